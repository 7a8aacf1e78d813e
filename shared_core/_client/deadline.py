"""Enforcing one deadline over a whole HTTP call (private to ``shared_core.clients``).

urllib3's timeouts bound each socket wait, not a call: a server that trickles
its headers or body, or a long Retry-After, can hold a caller far past any
budget. Here each call registers with one shared watchdog thread, and the
connection in use records itself on the call; when the deadline passes the
watchdog shuts that socket down, so the blocked read returns at once.

Before a connection is opened, the name is resolved on a helper thread that
the caller waits for no longer than the budget left (getaddrinfo cannot be
interrupted), and the connect timeout, which also bounds the whole TLS
handshake, is cut to the budget left.

A connection belongs to a call from the moment the call uses it until the
pool takes it back (``_put_conn``); the watchdog only cuts a connection its
call still owns, so a connection already handed to another thread is never
touched.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

from shared_core.context import DEADLINE_HEADER, Deadline

if TYPE_CHECKING:
    from shared_core._client.resilience import Guard

__all__ = ["Call", "current_call", "release", "resolve_within", "watched_pool_classes"]

#: Shortest timeout handed to a socket once a budget is nearly spent.
MIN_SOCKET_TIMEOUT = 0.001
#: The least time an attempt is given: one the deadline leaves less for is not started.
MIN_ATTEMPT_SECONDS = 0.01

# Guards which call owns which connection; held only for a few assignments or one shutdown().
_ownership = threading.Lock()


class Call:
    """The state of one client call: its deadline, whether it may be retried, how often it was, and the
    guard of its upstream (``None``: no bulkhead, breaker or retry budget)."""

    def __init__(
        self, deadline: Deadline | None, idempotent: bool, upstream: str = "", guard: Guard | None = None
    ) -> None:
        self.deadline = deadline
        self.idempotent = idempotent
        self.upstream = upstream
        self.guard = guard
        self.retries = 0
        self.expired = False
        self._connection: HTTPConnection | None = None
        self._finished = False

    def remaining(self) -> float | None:
        """Seconds left, or ``None`` without a deadline."""
        return None if self.deadline is None else self.deadline.remaining()

    def typical_seconds(self) -> float | None:
        """How long a successful call to this upstream typically takes, ``None`` before one was seen."""
        return self.guard.typical_seconds if self.guard is not None else None

    def has_room(self, wait: float = 0.0) -> bool:
        """Whether, after ``wait`` seconds, the deadline still leaves an attempt its typical time (at least
        ``MIN_ATTEMPT_SECONDS``); always ``True`` without a deadline."""
        remaining = self.remaining()
        return remaining is None or remaining - wait >= (self.typical_seconds() or 0.0) + MIN_ATTEMPT_SECONDS

    def spent(self) -> bool:
        """Whether the deadline has passed (or the watchdog already cut the call)."""
        return self.expired or (self.deadline is not None and self.deadline.expired)

    def attach(self, connection: HTTPConnection) -> None:
        """Take ``connection`` for this call, until the pool takes it back (``release``)."""
        with _ownership:
            connection._shared_core_call = self  # type: ignore[attr-defined]
            self._connection = connection

    def finish(self) -> None:
        with _ownership:
            self._finished = True
            self._connection = None

    def abort(self) -> None:
        """Called by the watchdog at the deadline: break the connection in use, if this call still owns it."""
        with _ownership:
            if self._finished:
                return
            self.expired = True
            connection = self._connection
            if connection is None or getattr(connection, "_shared_core_call", None) is not self:
                return
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed by the peer or by urllib3
                    sock.shutdown(socket.SHUT_RDWR)


def release(connection: HTTPConnection | None) -> None:
    """The pool took ``connection`` back: no call owns it any more, so no watchdog may cut it."""
    if connection is not None:
        with _ownership:
            connection._shared_core_call = None  # type: ignore[attr-defined]


def resolve_within(host: str, port: int, seconds: float) -> None:
    """Resolve ``host`` on a helper thread and wait at most ``seconds``; ``ConnectTimeoutError`` past that.

    IP literals return at once. Only the wait is bounded: a stalled resolver
    keeps its daemon thread until the system resolver gives up.
    """
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host.strip("[]"))
        return
    done = threading.Event()

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            pass  # urllib3 resolves again and reports the failure as it always does
        finally:
            done.set()

    threading.Thread(target=resolve, name="shared-core-resolve", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        raise ConnectTimeoutError(None, f"resolving {host} did not finish within the deadline")


current_call: ContextVar[Call | None] = ContextVar("shared_core_http_call", default=None)


class _Watchdog:
    """One daemon thread that aborts calls whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: Call) -> None:
        if call.deadline is None:
            return
        with self._cond:
            entry = (call.deadline.expires_at, next(self._ids), call)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="shared-core-deadline", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, call = heapq.heappop(self._heap)
            call.abort()


watchdog = _Watchdog()


class _WatchedConnectionMixin:
    """Records itself on the current call and fits each attempt, connect and TLS included, into its budget."""

    timeout: Any
    host: str
    port: int

    def connect(self) -> None:
        call = current_call.get()
        if call is not None:
            call.attach(self)  # type: ignore[arg-type]
            remaining = call.remaining()
            if remaining is not None:
                resolve_within(self.host, self.port, remaining)
                self._fit_timeout(call)
        super().connect()  # type: ignore[misc]

    def _fit_timeout(self, call: Call) -> float | None:
        remaining = call.remaining()
        if remaining is not None and isinstance(self.timeout, int | float):
            self.timeout = min(self.timeout, max(remaining, MIN_SOCKET_TIMEOUT))
        return remaining

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        call = current_call.get()
        if call is not None:
            call.attach(self)  # type: ignore[arg-type]
            remaining = self._fit_timeout(call)
            if remaining is not None and headers is not None:
                headers = HTTPHeaderDict(headers)
                headers[DEADLINE_HEADER] = f"{max(remaining, 0.0):.3f}"
        super().request(method, url, body=body, headers=headers, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _ReleasingPoolMixin:
    """Ends a call's ownership of a connection the moment the pool takes it back."""

    def _put_conn(self, conn: Any) -> None:
        release(conn)
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPConnectionPool(_ReleasingPoolMixin, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(_ReleasingPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


#: Pool classes for urllib3's PoolManager.pool_classes_by_scheme.
watched_pool_classes = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}
