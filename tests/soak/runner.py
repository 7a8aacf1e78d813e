"""A soak run: seeded clients and faults on a running stack, then the invariants over what happened.

``run(stack, seconds=…, seed=…)`` drives the integration suite's ``Stack`` (tests/integration/conftest.py):
clients (tests.soak.workload) create, patch, delete and restore users, tickets and files through the
edge while faults (tests.soak.faults) replace workers, pause, stop and kill containers and restart
PostgreSQL. Then it stops both, lets the stack heal and the outbox drain, reads every row back, and checks
the invariants (tests.soak.checker) and each service's ``/tmp``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.soak.checker import Final, check
from tests.soak.faults import SERVICES, Faults
from tests.soak.history import History
from tests.soak.workload import Workload

#: Seconds the outbox may take to drain once the faults stop: a task killed mid-run waits for
#: OUTBOX_RECOVER_AFTER (90 s) before it runs again.
DRAIN_WITHIN = 180.0
#: Bounds on each service's /tmp at the end: bytes in use, metrics files, files left in the upload spool.
TMP_BYTES = 16 * 1024 * 1024
METRICS_FILES = 32
#: Lists of every row, deleted ones included.
LISTS = {
    "users": ("user-service", "/api/users/"),
    "tickets": ("ticket-service", "/api/tickets/"),
    "notifications": ("communication-service", "/api/notifications/"),
    "files": ("file-service", "/api/files/"),
}
#: Run in a container: its /tmp usage in bytes, its metrics files and the files in its upload spool, as JSON.
TMP_PROBE = """
import json, os
def usage(top):
    total = files = 0
    for root, _, names in os.walk(top):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
            files += 1
    return total, files
metrics = [n for n in os.listdir("/tmp/prometheus") if n.endswith(".db")] if os.path.isdir("/tmp/prometheus") else []
spool_dir = os.environ.get("FILE_UPLOAD_TEMP_DIR") or "/tmp/uploads"
spool = [n for n in os.listdir(spool_dir) if n != ".lock"] if os.path.isdir(spool_dir) else []
print(json.dumps({"tmp": usage("/tmp")[0], "metrics": len(metrics), "spool": len(spool)}))
"""


@dataclass
class Report:
    """What a soak did and found."""

    seed: int
    seconds: float
    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rows: dict[str, int] = field(default_factory=dict)
    outages: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"soak: seed {self.seed}, {self.seconds:.0f} s, {sum(self.operations.values())} operations, "
            f"{sum(self.faults.values())} faults, {len(self.violations)} violations",
            "operations: " + ", ".join(f"{k} {v}" for k, v in sorted(self.operations.items())),
            "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            "faults: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            "rows at the end: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()),
            "outages: " + ("; ".join(self.outages) or "none"),
            *(f"VIOLATION {line}" for line in self.violations),
            *self.explanations,
        ]
        return "\n".join(lines)


def run(stack: Any, *, seconds: float, seed: int, postgres: bool, clients: int = 4) -> Report:
    """Soak ``stack`` for ``seconds`` with ``seed``; the report lists every violated invariant."""
    history = History()
    urls = {service: stack.url(service) for service in SERVICES}
    workload = Workload(urls, stack.token, history, seed, clients)
    faults = Faults(stack, seed, postgres=postgres)
    report = Report(seed, seconds)
    workload.start()
    faults.start()
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up and not faults.errors:
        time.sleep(0.5)
    faults.join(timeout=180)
    workload.join(timeout=90)
    report.violations += faults.errors
    report.faults, report.operations = faults.injected, Counter(op.kind for op in history.ops)
    report.outages = [
        f"{o.service} {o.kind} {o.end - o.start:.1f} s, the others' lists read {len(o.probes)} times"
        for o in faults.outages
    ]
    report.outcomes = Counter("no answer" if op.status is None else f"{op.status // 100}xx" for op in history.ops)
    stack.wait_healthy()
    _drain(stack, report)
    final = only_this_run(read_back(stack), workload.marker)
    report.rows = {name: len(rows) for name, rows in vars(final).items()}
    report.violations += check(history, final, faults.outages)
    report.violations += list(tmp_within_budget(stack))
    report.explanations = explain_failures(stack, history)
    return report


def explain_failures(stack: Any, history: History) -> list[str]:
    """For each 500 a client saw, the services' ERROR log lines of its request id (what went wrong inside)."""
    failed = {op.body["request_id"]: op for op in history.ops if op.status == 500 and isinstance(op.body, dict)}
    if not failed:
        return []
    logs = [line for s in SERVICES for line in stack.logs(s).splitlines() if " ERROR " in line or '"ERROR"' in line]
    found = []
    for request_id, op in failed.items():
        lines = [line for line in logs if request_id in line]
        found.append(f"explained: {op} logged {lines[0][:300] if lines else 'nothing at ERROR'}")
    return found


def _drain(stack: Any, report: Report) -> None:
    give_up = time.monotonic() + DRAIN_WITHIN
    while not stack.idle():
        if time.monotonic() > give_up:
            report.violations.append(f"outbox: not drained within {DRAIN_WITHIN} s: {stack.outbox()}")
            return
        time.sleep(1)


def read_back(stack: Any) -> Final:
    """Every row of every kind, deleted ones included, through the services' own list endpoints."""
    final = Final()
    for name, (service, path) in LISTS.items():
        rows: dict[str, dict[str, Any]] = getattr(final, name)
        cursor: str | None = None
        while True:
            params = {"include_deleted": "true", "limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = stack.call("GET", service, path, params=params)
            page.raise_for_status()
            body = page.json()
            rows.update((row["id"], row) for row in body["results"])
            cursor = body["next"]
            if cursor is None:
                break
    return final


def only_this_run(final: Final, marker: str) -> Final:
    """The rows this run made (its ``marker`` is in each user's values and ticket's title), and their children.

    The stack may hold rows of other tests (CI runs the soak after them); the invariants are about this run.
    """
    tickets = {k: row for k, row in final.tickets.items() if marker in row["title"]}
    return Final(
        users={k: row for k, row in final.users.items() if marker in row["email"] or marker in row["name"]},
        tickets=tickets,
        notifications={k: row for k, row in final.notifications.items() if row["ticket_id"] in tickets},
        files={k: row for k, row in final.files.items() if row["ticket_id"] in tickets},
    )


def tmp_within_budget(stack: Any) -> list[str]:
    """Each service's /tmp within TMP_BYTES, its metrics files within METRICS_FILES, its upload spool empty."""
    found = []
    for service in SERVICES:
        result = stack.container(service).exec_run(["python3", "-c", TMP_PROBE])
        seen = json.loads(result.output)
        if seen["tmp"] > TMP_BYTES or seen["metrics"] > METRICS_FILES or seen["spool"]:
            found.append(f"resources: {service} /tmp holds {seen} (bounds {TMP_BYTES} bytes, {METRICS_FILES} files)")
    return found
