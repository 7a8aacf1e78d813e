"""W3C Trace Context (https://www.w3.org/TR/trace-context/): ``traceparent`` and ``tracestate``.

Every request runs in a trace. ``RequestContextMiddleware`` continues the
caller's trace when its ``traceparent`` is valid, and starts one when none
arrived or the header is malformed (the first service a request meets is the
edge of the trace). Each service gives itself a new span id in that trace;
``HTTPClient`` sends every outgoing call the same trace id with a new parent
id (the call's own span), plus ``tracestate`` unchanged. Log lines carry the
trace id beside the request id, and outbox tasks carry the trace, so a
delivery continues it. ``X-Request-ID`` is unchanged: the two live side by
side.

shared_core records no spans and exports nothing. A service that configures
the OpenTelemetry SDK keeps doing so: its instrumentation reads and writes the
same two headers (OpenTelemetry's ``TraceContextTextMapPropagator`` parses ours
to the same trace id, and ours accepts its), so both propagate one trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from random import getrandbits
from typing import Final

__all__ = [
    "DEFAULT_FLAGS",
    "TRACEPARENT_HEADER",
    "TRACERESPONSE_HEADER",
    "TRACESTATE_HEADER",
    "TraceContext",
    "get_trace",
    "parse_traceparent",
    "parse_tracestate",
    "trace_context",
]

TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"
#: Trace Context Level 2's response header: the trace and this service's span, so access lines can log them.
TRACERESPONSE_HEADER: Final = "traceresponse"
#: Flags of a trace started here: sampled, so that a downstream tracer records it.
DEFAULT_FLAGS: Final = "01"

# version 00 is exactly these four fields; a later version may append "-..." fields, which are ignored.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACESTATE_KEY = re.compile(r"^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$")
_TRACESTATE_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
_MAX_TRACESTATE_MEMBERS: Final = 32
_MAX_TRACESTATE_LENGTH: Final = 512

_current: ContextVar[TraceContext | None] = ContextVar("shared_core_trace", default=None)


def _new_id(nbytes: int) -> str:
    """A random non-zero lowercase hex id (an all-zero id is invalid).

    Ids are unique, not secret, so ``random`` (as OpenTelemetry's SDK) and not a system call per id;
    ``random`` reseeds itself in every forked gunicorn worker.
    """
    while True:
        value = getrandbits(nbytes * 8)
        if value:
            return f"{value:0{nbytes * 2}x}"


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """``(trace_id, parent_id, flags)`` of a valid ``traceparent``, else ``None``.

    Invalid: anything but lowercase hex fields of 2-32-16-2 digits, version
    ``ff``, an all-zero trace id or parent id, or a version 00 header with
    more fields. A higher version's extra fields are ignored, as the standard
    says.
    """
    if value is None:
        return None
    match = _TRACEPARENT.match(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or not trace_id.strip("0") or not parent_id.strip("0"):
        return None
    return trace_id, parent_id, flags


def parse_tracestate(value: str | None) -> str | None:
    """A valid ``tracestate`` as one comma-joined header, or ``None`` (absent, empty or malformed).

    Members are ``key=value`` per the standard, at most 32 of them, 512
    characters in all, keys unique; one bad member discards the whole header.
    """
    if not value:
        return None
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    if not members or len(members) > _MAX_TRACESTATE_MEMBERS:
        return None
    keys = set()
    for member in members:
        key, sep, val = member.partition("=")
        if not sep or not _TRACESTATE_KEY.match(key) or not _TRACESTATE_VALUE.match(val) or key in keys:
            return None
        keys.add(key)
    joined = ",".join(members)
    return joined if len(joined) <= _MAX_TRACESTATE_LENGTH else None


@dataclass(frozen=True)
class TraceContext:
    """One span of a trace: ``span_id`` is this service's, ``parent_id`` the caller's (``None``: a new trace)."""

    trace_id: str
    span_id: str
    flags: str = DEFAULT_FLAGS
    state: str | None = None
    parent_id: str | None = None

    @classmethod
    def start(cls) -> TraceContext:
        """A new trace, with this service's span as its root."""
        return cls(trace_id=_new_id(16), span_id=_new_id(8))

    @classmethod
    def from_headers(cls, traceparent: str | None, tracestate: str | None = None) -> TraceContext:
        """A new span in the caller's trace, or a new trace if ``traceparent`` is absent or invalid.

        ``tracestate`` is kept only with a valid ``traceparent``, as the standard says.
        """
        parsed = parse_traceparent(traceparent)
        if parsed is None:
            return cls.start()
        trace_id, parent_id, flags = parsed
        return cls(trace_id, _new_id(8), flags, parse_tracestate(tracestate), parent_id)

    def child(self) -> TraceContext:
        """A new span in this trace whose parent is this one (an outgoing call, a task's delivery)."""
        return replace(self, span_id=_new_id(8), parent_id=self.span_id)

    @property
    def traceparent(self) -> str:
        """This span as a version 00 ``traceparent``."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate`` when there is one) for a call made from this span."""
        headers = {TRACEPARENT_HEADER: self.traceparent}
        if self.state:
            headers[TRACESTATE_HEADER] = self.state
        return headers


def get_trace() -> TraceContext | None:
    """The span of the work in progress, or ``None`` outside a request, task or ``trace_context`` block."""
    return _current.get()


@contextmanager
def trace_context(trace: TraceContext | None = None) -> Iterator[TraceContext]:
    """Run a block in ``trace`` (a new trace when ``None``); yields it."""
    trace = trace or TraceContext.start()
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
