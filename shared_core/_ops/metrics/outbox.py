"""The outbox as metrics: its queues read from the database per scrape, and each run and delivery counted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared_core._ops.metrics.families import OUTBOX_DELIVERY, OUTBOX_RUNS


class OutboxCollector(Collector):
    """``outbox_tasks{queue,state}``: ready, scheduled, running and failed tasks, read from the database per scrape.

    Read at scrape time, not counted in a process: the queue lives in the
    database, which every replica and worker shares. A scrape while the
    database is down leaves the family out rather than failing.
    """

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = tuple(queues)

    @classmethod
    def configured(cls) -> OutboxCollector | None:
        """A collector for the queues of ``settings.TASKS``, or ``None`` where the outbox is off."""
        backend = getattr(settings, "TASKS", {}).get("default", {})
        if backend.get("BACKEND") != "shared_core.outbox.OutboxBackend":
            return None
        return cls(backend.get("QUEUES", ()))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from shared_core.outbox._admin import outbox_stats  # its models load only where the outbox is on

        try:
            stats = {s.queue: s for s in outbox_stats()}
        except DatabaseError:
            return
        family = GaugeMetricFamily("outbox_tasks", "Outbox tasks by state.", labels=["queue", "state"])
        for queue in sorted({*self.queues, *stats}):
            found = stats.get(queue)
            for state in ("ready", "scheduled", "running", "failed"):
                family.add_metric([queue, state], getattr(found, state) if found else 0)
        yield family


def observe_delivery(sender: object, task_result: Any, **_: object) -> None:
    """``task_finished`` receiver: one run's outcome, and the delivery latency of a task delivered."""
    status = str(getattr(task_result.status, "value", task_result.status)).lower()
    OUTBOX_RUNS.labels(task_result.task.queue_name, status).inc()
    if status == "successful" and task_result.finished_at and task_result.enqueued_at:
        latency = (task_result.finished_at - task_result.enqueued_at).total_seconds()
        OUTBOX_DELIVERY.labels(task_result.task.queue_name).observe(max(0.0, latency))
