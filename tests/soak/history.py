"""What a soak records: every operation a client sent, when, and what came back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: Statuses a request may end with and still have changed something: no answer, or the gateway's and the
#: service's "unavailable" and "timed out". Its effect is unknown; a 2xx is applied, a 4xx is not.
UNKNOWN_OUTCOME = frozenset({None, 500, 502, 503, 504})


@dataclass
class Op:
    """One request of the workload, numbered in the order it was sent."""

    number: int
    client: int
    kind: str  # create_user, patch_user, delete_user, restore_user, create_ticket, ..., read
    target: str | None  # the row's id (for a create: the id it answered, if any)
    sent: dict[str, Any] = field(default_factory=dict)  # the values it wrote; "key" for an idempotent create
    start: float = 0.0
    end: float = 0.0
    status: int | None = None  # None: no answer (connection error or client timeout)
    body: Any = None
    shape_error: str | None = None  # what was wrong with the answer's form (not JSON, no envelope)
    service: str = ""  # the service it was sent to

    @property
    def acked(self) -> bool:
        """The service said it was done."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def unknown(self) -> bool:
        """It may or may not have taken effect."""
        return self.status in UNKNOWN_OUTCOME

    @property
    def applied_maybe(self) -> bool:
        """Acknowledged, or with an unknown outcome: it may have taken effect."""
        return self.acked or self.unknown

    def __str__(self) -> str:
        return f"#{self.number} {self.kind} {self.target or '-'} -> {self.status} [{self.start:.3f}-{self.end:.3f}]"


class History:
    """Every operation of a run, appended by many client threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops: list[Op] = []

    def new(self, client: int, kind: str, target: str | None = None, **sent: Any) -> Op:
        with self._lock:
            op = Op(len(self.ops), client, kind, target, dict(sent))
            self.ops.append(op)
        return op

    def of(self, *kinds: str) -> list[Op]:
        return [op for op in self.ops if op.kind in kinds]
