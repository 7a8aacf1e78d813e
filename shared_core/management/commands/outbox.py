"""``manage.py outbox``: run the outbox worker, see the outbox, retry failed tasks (shared_core.outbox)."""

from __future__ import annotations

import json
import socket
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shared_core.outbox import DEFAULT_HEARTBEAT_FILE


def _queues(raw: str) -> list[str]:
    return [q.strip() for q in raw.split(",") if q.strip() and q.strip() != "*"]


class Command(BaseCommand):
    help = "The transactional outbox: work (run the worker), status, retry (FAILED tasks), prune (old successful ones)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        work = commands.add_parser("work", help="Run tasks until SIGTERM; the task in hand is finished first.")
        work.add_argument("--queues", default="*", help="Comma-separated queues to run (default: every queue).")
        work.add_argument("--max-tasks", type=int, default=None, help="Stop after this many tasks.")
        work.add_argument("--heartbeat", default=DEFAULT_HEARTBEAT_FILE, help="File touched on every loop turn.")
        work.add_argument("--worker-id", default=None, help="Unique per worker (default: host name and a random part).")
        work.add_argument(
            "--metrics-port", type=int, default=None, help="Serve GET /metrics on this port (default: no metrics)."
        )
        status = commands.add_parser("status", help="Ready, scheduled, running and failed tasks per queue.")
        status.add_argument("--json", action="store_true", help="One JSON object instead of a table.")
        retry = commands.add_parser("retry", help="Put FAILED tasks back to READY with a fresh set of attempts.")
        retry.add_argument("--queues", default="*", help="Comma-separated queues (default: every queue).")
        retry.add_argument("ids", nargs="*", help="Only these task ids.")
        prune = commands.add_parser("prune", help="Delete successful tasks older than the retention, now.")
        prune.add_argument(
            "--older-than", type=float, default=None, help="Seconds since they finished (default: OUTBOX_RETENTION)."
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if not apps.is_installed("django_tasks_db"):
            raise CommandError("this service has no outbox: service_settings(task_queues=[...]) turns it on")
        from shared_core.outbox._admin import retry_failed  # its models exist only where the outbox is on

        if action == "work":
            self.work(**options)
        elif action == "status":
            self.status(as_json=options["json"])
        elif action == "prune":
            from shared_core.outbox._admin import prune_finished

            if options["older_than"] is not None and options["older_than"] <= 0:
                raise CommandError("--older-than must be a positive number of seconds")
            self.stdout.write(f"{prune_finished(older_than=options['older_than'])} successful task(s) pruned")
        else:
            try:
                uuids = [str(uuid.UUID(raw)) for raw in options["ids"]]
            except ValueError:
                raise CommandError("task ids must be UUIDs") from None
            retried = retry_failed(queues=_queues(options["queues"]), ids=uuids)
            self.stdout.write(f"{retried} failed task(s) put back to ready")

    def work(
        self,
        *,
        queues: str,
        max_tasks: int | None,
        heartbeat: str,
        worker_id: str | None,
        metrics_port: int | None,
        **_: Any,
    ) -> None:
        if max_tasks is not None and max_tasks < 1:
            raise CommandError("--max-tasks must be at least 1")
        from shared_core.outbox._worker import Worker

        worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        if len(worker_id) > 64:
            raise CommandError("--worker-id must be at most 64 characters")
        if metrics_port and getattr(settings, "METRICS_ENABLED", False):
            from shared_core._ops.metrics import serve

            try:
                serve(metrics_port)
            except OSError as exc:
                raise CommandError(f"--metrics-port {metrics_port}: {exc.strerror}") from None
        Worker(
            worker_id=worker_id,
            queues=_queues(queues),
            heartbeat=Path(heartbeat) if heartbeat else None,
            max_tasks=max_tasks,
        ).run()

    def status(self, *, as_json: bool) -> None:
        from shared_core.outbox._admin import outbox_stats

        stats = outbox_stats()
        if as_json:
            self.stdout.write(json.dumps({"queues": [s.as_dict() for s in stats]}))
            return
        row = "{:<20} {:>7} {:>9} {:>7} {:>7} {:>12}"
        self.stdout.write(row.format("queue", "ready", "scheduled", "running", "failed", "oldest ready"))
        for s in stats:
            age = "-" if s.oldest_ready_age is None else f"{s.oldest_ready_age:.1f} s"
            self.stdout.write(row.format(s.queue, s.ready, s.scheduled, s.running, s.failed, age))
