"""What operators run on the outbox (``manage.py outbox``): statistics, retrying FAILED tasks, pruning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.db import models
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from shared_core.outbox import DEFAULT_RETENTION, setting

__all__ = ["DEFAULT_PRUNE_BATCH", "QueueStats", "outbox_stats", "prune_finished", "retry_failed"]

#: Rows one DELETE of ``prune_finished`` removes at most.
DEFAULT_PRUNE_BATCH: Final = 1000


@dataclass(frozen=True)
class QueueStats:
    """One queue of the outbox. ``oldest_ready_age``: seconds the oldest due task has waited (``None``: none)."""

    queue: str
    ready: int
    scheduled: int
    running: int
    failed: int
    oldest_ready_age: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outbox_stats(now: datetime | None = None) -> list[QueueStats]:
    """Counts per queue, from one grouped query; a task is *ready* once due, *scheduled* while it waits to retry."""
    now = now or timezone.now()
    due = models.Q(status=TaskResultStatus.READY) & (models.Q(run_after__lte=now) | models.Q(run_after=get_date_max()))
    unfinished = [TaskResultStatus.READY, TaskResultStatus.RUNNING, TaskResultStatus.FAILED]
    rows = (
        DBTaskResult.objects.filter(status__in=unfinished)  # the partial index outbox_unfinished_idx; no finished row
        .order_by()
        .values("queue_name")
        .annotate(
            ready=models.Count("pk", filter=due),
            scheduled=models.Count("pk", filter=models.Q(status=TaskResultStatus.READY) & ~due),
            running=models.Count("pk", filter=models.Q(status=TaskResultStatus.RUNNING)),
            failed=models.Count("pk", filter=models.Q(status=TaskResultStatus.FAILED)),
            oldest=models.Min("enqueued_at", filter=due),
        )
        .order_by("queue_name")
    )
    return [
        QueueStats(
            queue=row["queue_name"],
            ready=row["ready"],
            scheduled=row["scheduled"],
            running=row["running"],
            failed=row["failed"],
            oldest_ready_age=round((now - row["oldest"]).total_seconds(), 3) if row["oldest"] else None,
        )
        for row in rows
    ]


def retry_failed(*, queues: Sequence[str] = (), ids: Sequence[str] = ()) -> int:
    """Put FAILED tasks (of ``queues``, or with ``ids``; all when both are empty) back to READY with new attempts."""
    failed = DBTaskResult.objects.failed()
    if queues:
        failed = failed.filter(queue_name__in=queues)
    if ids:
        failed = failed.filter(pk__in=ids)
    return failed.update(
        status=TaskResultStatus.READY,
        run_after=timezone.now(),
        worker_ids=[],
        finished_at=None,
    )


def prune_finished(*, older_than: float | None = None, batch: int = DEFAULT_PRUNE_BATCH) -> int:
    """Delete successful tasks finished more than ``older_than`` seconds ago; returns how many.

    ``None`` takes ``OUTBOX_RETENTION``; ``0`` prunes nothing (keep forever). Rows go in batches of
    ``batch``, so no statement holds the table for long. Failed, ready and running tasks are never pruned.
    """
    older_than = setting("OUTBOX_RETENTION", DEFAULT_RETENTION) if older_than is None else older_than
    if older_than <= 0:
        return 0
    cutoff = timezone.now() - timedelta(seconds=older_than)
    old = DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL, finished_at__lt=cutoff).order_by()
    pruned = 0
    while ids := list(old.values_list("pk", flat=True)[:batch]):
        pruned += DBTaskResult.objects.filter(pk__in=ids).delete()[0]
    return pruned
