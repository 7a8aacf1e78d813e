"""The transactional outbox: side effects on other services, stored with the write that causes them.

A side effect is a task of Django's task framework (``django_tasks``, the
backport of Django 6's ``django.tasks``) on ``OutboxBackend``, which stores it
as a row of ``django_tasks_db`` in the service's own database. Enqueue it
inside the transaction of the business write: both are committed or neither
is, and no request waits on a neighbour::

    @task(takes_context=True, queue_name="notifications")
    def notify(context: TaskContext, ticket_id: str) -> None:
        communications().post_json("/api/notifications/", {...}, idempotency_key=delivery_key(context))

    with transaction.atomic():
        ticket = Ticket.objects.create(...)
        notify.enqueue(str(ticket.id))

The worker (``shared_core.outbox._worker``, ``manage.py outbox work``, the base image's ``worker`` command)
runs each task at least once; what this module adds to the packages:

- **Retries.** A transient failure (``is_transient``: connection errors,
  timeouts, 408, 425, 429 and 5xx, the database's operational errors) puts the same row back to READY with a
  ``run_after`` of full-jitter exponential backoff, until ``OUTBOX_MAX_ATTEMPTS``
  attempts were made; then, and at once for any other error, the row is
  FAILED and keeps the last error. ``retry_failed`` (``outbox retry``) gives a
  FAILED task a fresh set of attempts.
- **One key per task.** Every attempt runs the same row, so ``delivery_key``
  is the same on each: a receiver that deduplicates on ``Idempotency-Key``
  stores the effect once however often it is delivered.
- **Recovery.** A task left RUNNING by a worker that died is put back to READY
  (or FAILED once its attempts are spent) after ``OUTBOX_RECOVER_AFTER``
  seconds; each attempt is cut at ``OUTBOX_TASK_TIMEOUT`` seconds by its
  deadline, and recovery waits longer than that, so a live attempt is never
  taken over. A claim only finishes the row it claimed: an attempt that
  outlived its recovery (a paused container) cannot overwrite a newer one.
- **Context.** The request id and W3C trace of the enqueuing request go with
  the task; the worker runs it under that id (log lines, outgoing
  ``X-Request-ID``) as a new span of that trace, and under a fresh deadline
  of ``OUTBOX_TASK_TIMEOUT``, never the request's.
- **Visibility.** ``outbox_stats`` (``outbox status``): per queue, ready,
  scheduled (waiting for a retry), running and failed counts, and the age of
  the oldest ready task, read through a partial index of unfinished tasks
  (the ``shared_core.outbox`` app's migration), never the whole table.
- **Pruning.** Successful tasks finished more than ``OUTBOX_RETENTION``
  seconds ago are deleted by the worker about once a minute, in batches, and
  by ``outbox prune``. FAILED tasks are kept until an operator retries them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django_tasks import TaskContext
from django_tasks.utils import normalize_json
from django_tasks_db.backend import DatabaseBackend

from shared_core._base.tracing import get_trace
from shared_core.clients import HTTPClientError, HTTPStatusError
from shared_core.context import get_request_id

if TYPE_CHECKING:
    from django_tasks_db.models import DBTaskResult

__all__ = ["delivery_key", "is_transient"]

#: Attempts of one task, the first included, before it is FAILED; ``OUTBOX_MAX_ATTEMPTS``.
DEFAULT_MAX_ATTEMPTS: Final = 10
#: Backoff before attempt n+1 is uniform in [0, base * 2 ** (n - 1)] seconds; ``OUTBOX_BACKOFF_BASE``.
DEFAULT_BACKOFF_BASE: Final = 1.0
#: Longest backoff between two attempts, in seconds; ``OUTBOX_BACKOFF_MAX``.
DEFAULT_BACKOFF_MAX: Final = 300.0
#: Budget of one attempt in seconds: its HTTPClient calls share this deadline; ``OUTBOX_TASK_TIMEOUT``.
DEFAULT_TASK_TIMEOUT: Final = 30.0
#: A task RUNNING for longer than this many seconds lost its worker; ``OUTBOX_RECOVER_AFTER`` (> the timeout).
DEFAULT_RECOVER_AFTER: Final = 90.0
#: Seconds a successful task is kept before the worker prunes it; ``OUTBOX_RETENTION`` (0 keeps them forever).
DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
#: Seconds an idle worker waits before it looks for ready tasks again; ``OUTBOX_POLL_INTERVAL``.
DEFAULT_POLL_INTERVAL: Final = 0.25
#: The file whose modification time the worker advances on every turn of its loop (the image's ``healthcheck``).
DEFAULT_HEARTBEAT_FILE: Final = "/tmp/outbox-worker.heartbeat"  # noqa: S108 - the container's private tmpfs

#: The key of args_kwargs that carries the enqueuing request's context (the task's own args are beside it).
CONTEXT_KEY: Final = "context"
_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class WorkerLost(Exception):
    """Recorded as the error of a task whose worker died while it ran, once its attempts were spent."""


def setting(name: str, default: float) -> float:
    """The Django setting ``name`` (one of the ``OUTBOX_*`` that ``service_settings`` reads), else ``default``."""
    return float(getattr(settings, name, default))


def is_transient(exc: BaseException) -> bool:
    """Whether a later attempt may succeed: connection errors, timeouts, deadlines, 408, 425, 429 and 5xx, and
    the database's ``OperationalError`` and ``InterfaceError`` (locked, serialization failure, deadlock,
    connection closed or restarting).

    Any other exception (a 4xx, an ``IntegrityError``, a bug in the task) is permanent: retrying cannot help.
    """
    if isinstance(exc, HTTPStatusError):
        return exc.status_code in _TRANSIENT_STATUSES
    return isinstance(exc, HTTPClientError | OperationalError | InterfaceError)


def backoff(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter, uniform in [0, min(cap, base·2ⁿ⁻¹)].

    ``None`` takes ``OUTBOX_BACKOFF_BASE`` / ``OUTBOX_BACKOFF_MAX``.
    """
    base = setting("OUTBOX_BACKOFF_BASE", DEFAULT_BACKOFF_BASE) if base is None else base
    cap = setting("OUTBOX_BACKOFF_MAX", DEFAULT_BACKOFF_MAX) if cap is None else cap
    return random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))  # noqa: S311 - jitter, not a secret


def delivery_key(context: TaskContext) -> str:
    """The ``Idempotency-Key`` of a task: the same on every attempt, different for every task."""
    return f"outbox-{context.task_result.id}"


class OutboxBackend(DatabaseBackend):
    """``django_tasks_db``'s backend that also stores the enqueuing request's id and trace with the task.

    Enqueueing is one INSERT on the default database, so it joins the caller's
    transaction: a rolled-back write takes its tasks with it.
    """

    def _task_to_db_task(self, task: Any, args: Any, kwargs: Any) -> DBTaskResult[Any, Any]:
        from django_tasks_db.models import DBTaskResult  # models need the app registry; settings import this module

        trace = get_trace()
        context = {"request_id": get_request_id(), **(trace.headers() if trace is not None else {})}
        row: DBTaskResult[Any, Any] = DBTaskResult.objects.create(
            id=self._get_id(),
            args_kwargs={**normalize_json({"args": args, "kwargs": kwargs}), CONTEXT_KEY: context},
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after,
            backend_name=self.alias,
        )
        return row
