"""Request context carried between services: a request id and a deadline.

Both live in context variables, so each gunicorn thread (or asyncio task)
sees its own. ``RequestContextMiddleware`` fills them from the incoming
headers; ``HTTPClient`` reads them and sends them on every outgoing call; the
logging filter writes the request id into every log line.

On the wire the deadline is a *remaining budget* in seconds
(``X-Request-Deadline: 2.350``), not a wall-clock time, so clocks that
disagree between containers cannot stretch or shrink it.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeGuard

__all__ = ["Deadline", "DeadlineExceeded", "get_deadline", "get_request_id", "request_context"]

#: Header that carries the request id in both directions.
REQUEST_ID_HEADER = "X-Request-ID"
#: Header that carries the caller's remaining budget in seconds.
DEADLINE_HEADER = "X-Request-Deadline"
#: An incoming budget larger than this many seconds is cut to it.
MAX_PROPAGATED_BUDGET = 300.0

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("shared_core_request_id", default=None)
_deadline: ContextVar[Deadline | None] = ContextVar("shared_core_deadline", default=None)


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which work must be done."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left; zero or negative once expired."""
        return self.expires_at - time.monotonic()

    @property
    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0

    def earliest(self, other: Deadline | None) -> Deadline:
        """Whichever of the two deadlines comes first (``None`` is no deadline)."""
        return self if other is None or self.expires_at <= other.expires_at else other


class DeadlineExceeded(Exception):
    """The budget of the work in progress was spent (a database statement cut, say).

    ``RequestContextMiddleware`` answers it with 504, as it does a slow upstream.
    """


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> TypeGuard[str]:
    """Whether an incoming id is safe to log and forward (1-128 of ``A-Za-z0-9._:-``)."""
    return value is not None and _REQUEST_ID_RE.fullmatch(value) is not None


def parse_budget(value: str | None) -> float | None:
    """Seconds from a ``X-Request-Deadline`` header; ``None`` if absent or malformed.

    The result is capped at ``MAX_PROPAGATED_BUDGET`` and may be zero or
    negative, which means the caller's budget is already spent.
    """
    if not value:
        return None
    try:
        budget = float(value)
    except ValueError:
        return None
    if not math.isfinite(budget):
        return None
    return min(budget, MAX_PROPAGATED_BUDGET)


def get_request_id() -> str | None:
    """The request id of the work in progress, or ``None`` outside a request."""
    return _request_id.get()


def get_deadline() -> Deadline | None:
    """The deadline of the work in progress, or ``None`` when there is none."""
    return _deadline.get()


@contextmanager
def request_context(request_id: str | None = None, deadline: Deadline | None = None) -> Iterator[str]:
    """Run a block with a request id (made if ``None``) and an optional deadline.

    Useful for management commands and background jobs, so their outgoing
    calls and log lines carry an id too. Yields the request id.
    """
    rid = request_id if valid_request_id(request_id) else new_request_id()
    rid_token = _request_id.set(rid)
    deadline_token = _deadline.set(deadline)
    try:
        yield rid
    finally:
        _deadline.reset(deadline_token)
        _request_id.reset(rid_token)
