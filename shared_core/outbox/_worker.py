"""The outbox worker: it claims due tasks, runs each under its context and deadline, and recovers lost ones."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from traceback import format_exception
from types import FrameType
from typing import Any, Final

from django.db import close_old_connections, transaction
from django.db.utils import DatabaseError, OperationalError
from django.utils import timezone
from django_tasks import TaskContext, TaskResultStatus
from django_tasks.signals import task_finished, task_started
from django_tasks.utils import normalize_json
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from shared_core._base.tracing import TRACEPARENT_HEADER, TRACESTATE_HEADER, TraceContext, trace_context
from shared_core._client.errors import HTTPUpstreamUnavailable
from shared_core.context import Deadline, request_context
from shared_core.outbox import (
    CONTEXT_KEY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RECOVER_AFTER,
    DEFAULT_TASK_TIMEOUT,
    OutboxBackend,
    WorkerLost,
    backoff,
    is_transient,
    setting,
)
from shared_core.outbox._admin import prune_finished

__all__ = ["Worker", "recover"]

logger = logging.getLogger(__name__)

#: How often, in polls, a worker looks for tasks whose worker died.
_RECOVER_EVERY: Final = 20
#: The worker prunes every this many polls (about once a minute at the default interval).
_PRUNE_EVERY: Final = 240


def _error_fields(exc: BaseException) -> dict[str, str]:
    return {
        "exception_class_path": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "traceback": "".join(format_exception(exc)),
    }


def recover(*, recover_after: float | None = None, max_attempts: int | None = None) -> int:
    """Put tasks RUNNING for longer than ``recover_after`` seconds back to READY, or FAILED if out of attempts.

    ``None`` takes ``OUTBOX_RECOVER_AFTER`` / ``OUTBOX_MAX_ATTEMPTS``. Each row
    is changed only if it still holds the claim that was found stale, so two
    workers recovering at once change it once. Returns the rows changed.
    """
    recover_after = setting("OUTBOX_RECOVER_AFTER", DEFAULT_RECOVER_AFTER) if recover_after is None else recover_after
    max_attempts = int(setting("OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)) if max_attempts is None else max_attempts
    now = timezone.now()
    stale = DBTaskResult.objects.running().filter(started_at__lt=now - timedelta(seconds=recover_after))
    changed = 0
    for pk, started_at, worker_ids in stale.values_list("pk", "started_at", "worker_ids"):
        claim = DBTaskResult.objects.running().filter(pk=pk, started_at=started_at)
        lost = WorkerLost(f"worker {worker_ids[-1] if worker_ids else '?'} stopped while running this task")
        if len(worker_ids) >= max_attempts:
            done = claim.update(status=TaskResultStatus.FAILED, finished_at=now, **_error_fields(lost))
        else:
            done = claim.update(status=TaskResultStatus.READY, run_after=now, **_error_fields(lost))
        if done:
            logger.warning("outbox task %s recovered from a lost worker (attempt %d)", pk, len(worker_ids))
        changed += done
    return changed


def _refresh_connections() -> None:
    """Drop broken or expired database connections, as Django does between requests; never inside a transaction
    (a caller's, or a test's), whose connection is not ours to close."""
    if not transaction.get_connection().in_atomic_block:
        close_old_connections()


class Worker:
    """Runs outbox tasks until SIGTERM or SIGINT, which let the task in hand finish first.

    ``queues``: the queues to run (empty: all). ``max_tasks``: stop after that
    many (``None``: never). Timings come from the ``OUTBOX_*`` settings.
    """

    def __init__(
        self,
        *,
        worker_id: str,
        queues: Iterable[str] = (),
        backend: str = "default",
        heartbeat: Path | None = None,
        max_tasks: int | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.queues = list(queues)
        self.backend = backend
        self.heartbeat = heartbeat
        self.max_tasks = max_tasks
        self.interval = setting("OUTBOX_POLL_INTERVAL", DEFAULT_POLL_INTERVAL)
        self.timeout = setting("OUTBOX_TASK_TIMEOUT", DEFAULT_TASK_TIMEOUT)
        self.max_attempts = int(setting("OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        self._stopping = threading.Event()
        self.done = 0

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Finish the task in hand, then return from ``run``."""
        if signum is not None:
            name = signal.strsignal(signum)
            logger.info("outbox worker %s: %s, stopping after the task in hand", self.worker_id, name)
        self._stopping.set()

    def run(self) -> None:
        """Poll, claim and run tasks; recover lost ones every few polls."""
        previous = {signum: signal.signal(signum, self.stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._loop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self) -> None:
        logger.info("outbox worker %s started on %s", self.worker_id, ", ".join(self.queues) or "every queue")
        polls = 0
        while not self._stopping.is_set():
            self._beat()
            try:
                if polls % _RECOVER_EVERY == 0:
                    recover(max_attempts=self.max_attempts)
                if polls % _PRUNE_EVERY == 0:
                    prune_finished()
                polls += 1
                row = self.claim()
                if row is not None:
                    self.execute(row)
                    self.done += 1
            except DatabaseError as exc:
                # The database is down or restarting: keep beating and try again, never crash the container.
                # A task claimed meanwhile stays RUNNING until recovery gives it back.
                logger.warning("outbox worker %s: database unavailable, retrying: %s", self.worker_id, exc)
                _refresh_connections()
                row = None
            if self.max_tasks is not None and self.done >= self.max_tasks:
                break
            if row is None:
                self._stopping.wait(self.interval)
        logger.info("outbox worker %s stopped after %d tasks", self.worker_id, self.done)

    def drain(self) -> int:
        """Run due tasks in this thread until none is left (tests, one-off runs); returns how many ran."""
        ran = 0
        while (row := self.claim()) is not None:
            self.execute(row)
            ran += 1
        return ran

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.touch()

    def claim(self) -> DBTaskResult[Any, Any] | None:
        """The next due task, marked RUNNING by this worker, or ``None``.

        A plain read first, so an idle worker never takes SQLite's write lock;
        then ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) or an exclusive
        transaction (SQLite), so two workers never claim one task.
        """
        _refresh_connections()
        due = DBTaskResult.objects.ready().filter(backend_name=self.backend)
        if self.queues:
            due = due.filter(queue_name__in=self.queues)
        try:
            if not due.exists():
                return None
            with exclusive_transaction(due.db):
                row = due.get_locked()
                if row is not None:
                    row.claim(self.worker_id)
                return row
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                return None
            raise

    def execute(self, row: DBTaskResult[Any, Any]) -> None:
        """Run one claimed task under its request id, in its trace and with a fresh deadline; record the outcome."""
        context = row.args_kwargs.get(CONTEXT_KEY) or {}
        trace = TraceContext.from_headers(context.get(TRACEPARENT_HEADER), context.get(TRACESTATE_HEADER))
        with request_context(context.get("request_id"), Deadline.after(self.timeout)), trace_context(trace):
            started = time.monotonic()
            try:
                task = row.task
                result = row.task_result
                task_started.send(sender=type(task.get_backend()), task_result=result)
                args, kwargs = result.args, result.kwargs
                if task.takes_context:
                    args = [TaskContext(task_result=result), *args]  # type: ignore[arg-type]
                value = task.call(*args, **kwargs)
                self._finish(row, status=TaskResultStatus.SUCCESSFUL, return_value=normalize_json(value))
                logger.info("outbox task %s %s delivered in %.3f s", row.task_path, row.pk, time.monotonic() - started)
            except Exception as exc:  # a task's failure is recorded, never the worker's end
                self._failed(row, exc)
        try:
            task_finished.send(sender=OutboxBackend, task_result=DBTaskResult.objects.get(pk=row.pk).task_result)
        except Exception:  # a receiver's bug must not stop the worker
            logger.exception("a task_finished receiver failed for outbox task %s", row.pk)

    def _failed(self, row: DBTaskResult[Any, Any], exc: Exception) -> None:
        if isinstance(exc, DatabaseError):  # the task's connection may be the broken part: record with a fresh one
            _refresh_connections()
        attempt = len(row.worker_ids)
        if isinstance(exc, HTTPUpstreamUnavailable):
            # Nothing was sent: the upstream's circuit is open (or its bulkhead full). Wait as long as it says,
            # and give this claim back, so a neighbour's outage never uses up the task's attempts.
            delay = max(exc.retry_after, self.interval)
            values = {"run_after": timezone.now() + timedelta(seconds=delay), "worker_ids": row.worker_ids[:-1]}
            self._finish(row, status=TaskResultStatus.READY, finished_at=None, **values, **_error_fields(exc))
            logger.warning(
                "outbox task %s %s postponed %.1f s, attempt not counted: %s", row.task_path, row.pk, delay, exc
            )
            return
        if is_transient(exc) and attempt < self.max_attempts:
            delay = backoff(attempt)
            retry_at = timezone.now() + timedelta(seconds=delay)
            self._finish(row, status=TaskResultStatus.READY, run_after=retry_at, finished_at=None, **_error_fields(exc))
            logger.warning(
                "outbox task %s %s attempt %d/%d failed, retry in %.1f s: %s",
                row.task_path, row.pk, attempt, self.max_attempts, delay, exc,
            )  # fmt: skip
            return
        self._finish(row, status=TaskResultStatus.FAILED, **_error_fields(exc))
        logger.error("outbox task %s %s failed after %d attempts: %s", row.task_path, row.pk, attempt, exc)

    def _finish(self, row: DBTaskResult[Any, Any], **values: Any) -> None:
        """Record an outcome on the row, only if this worker's claim still holds it (not recovered meanwhile)."""
        values.setdefault("finished_at", timezone.now())
        values.setdefault("exception_class_path", "")
        values.setdefault("traceback", "")
        claim = DBTaskResult.objects.running().filter(pk=row.pk, started_at=row.started_at)
        if not claim.update(**values):
            logger.warning("outbox task %s was recovered while this worker ran it; its outcome is dropped", row.pk)
