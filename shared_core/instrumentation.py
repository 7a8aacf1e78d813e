"""Instrumentation hooks of HTTPClient, as stamina has them: metrics and tracing plug in without subclassing.

::

    class CountRetries:
        def on_retry(self, details: RetryDetails) -> None:
            retries.labels(details.upstream).inc()

        def on_call_end(self, details: CallDetails) -> None:
            calls.labels(details.upstream, details.outcome).inc()

    set_hooks([CountRetries()])

A hook has both methods, and may have a third, ``on_circuit_change``, called
each time an upstream's circuit breaker changes state. They run synchronously
in the calling thread, after the event: ``on_retry`` each time a call is about
to be sent again (before its backoff), ``on_call_end`` once per call, whatever
its end (a call refused by the circuit or the bulkhead ends too, with no attempt). A hook that raises is
logged and skipped: instrumentation never breaks a call. The details never hold
the token, the query string or the body; ``path`` is the call's path as given
(it may hold ids, so do not use it as a metric label).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "OUTCOMES",
    "CallDetails",
    "CircuitDetails",
    "CircuitState",
    "Hook",
    "Outcome",
    "RetryDetails",
    "get_hooks",
    "set_hooks",
]

logger = logging.getLogger(__name__)

Outcome = Literal[
    "ok", "error_status", "connection_error", "timeout", "deadline_exceeded", "circuit_open", "bulkhead_full"
]
#: Every outcome a call can end with: a response below 400, a response of 400 or more, the three failures,
#: then the two ways a call is refused before anything is sent (``attempts`` is 0).
OUTCOMES: tuple[Outcome, ...] = (
    "ok", "error_status", "connection_error", "timeout", "deadline_exceeded", "circuit_open", "bulkhead_full"
)  # fmt: skip
#: The outcomes of calls that were refused without sending anything.
REFUSED_OUTCOMES: frozenset[Outcome] = frozenset({"circuit_open", "bulkhead_full"})


@dataclass(frozen=True)
class RetryDetails:
    """A call about to be sent again. ``retry``: 1 for the first retry. ``cause``: e.g. ``status 503``."""

    upstream: str
    method: str
    path: str
    retry: int
    cause: str


@dataclass(frozen=True)
class CallDetails:
    """A call that ended. ``status``: the final response's, ``None`` without one; ``seconds``: the whole call."""

    upstream: str
    method: str
    path: str
    outcome: Outcome
    status: int | None
    attempts: int
    seconds: float


CircuitState = Literal["closed", "half_open", "open"]


@dataclass(frozen=True)
class CircuitDetails:
    """The circuit breaker of ``upstream`` in this process moved from ``before`` to ``after``; ``reason``
    says why, for people (``"6 of the last 10 calls failed"``)."""

    upstream: str
    before: CircuitState
    after: CircuitState
    reason: str


class Hook(Protocol):
    def on_retry(self, details: RetryDetails) -> None: ...

    def on_call_end(self, details: CallDetails) -> None: ...


_hooks: tuple[Hook, ...] = ()


def set_hooks(hooks: Iterable[Hook]) -> None:
    """Replace the hooks every HTTPClient calls (an empty list removes them all)."""
    global _hooks
    _hooks = tuple(hooks)


def get_hooks() -> tuple[Hook, ...]:
    """The hooks in place, in the order they run."""
    return _hooks


def emit_retry(details: RetryDetails) -> None:
    """Tell every hook about a retry (HTTPClient calls this)."""
    _emit("on_retry", details)


def emit_call_end(details: CallDetails) -> None:
    """Tell every hook a call ended (HTTPClient calls this)."""
    _emit("on_call_end", details)


def emit_circuit_change(details: CircuitDetails) -> None:
    """Tell every hook that has ``on_circuit_change`` (it is optional) that a circuit moved."""
    _emit("on_circuit_change", details)


def _emit(event: str, details: RetryDetails | CallDetails | CircuitDetails) -> None:
    for hook in _hooks:
        method = getattr(hook, event, None)
        if method is None:
            continue
        try:
            method(details)
        except Exception:
            logger.exception("instrumentation hook %r failed in %s", hook, event)
