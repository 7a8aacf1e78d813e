"""Test helpers for services built on shared_core: a real, scriptable HTTP/1.1 server on 127.0.0.1,
and a check that every route is in the service's OpenAPI document.

``with Upstream() as users: users.script("/api/users/x/", Reply(404)); ...`` gives a
service under test a real neighbour that answers, fails, stalls or trickles
as scripted, and records what it was sent. Turn the client's backoff sleeps
off with ``set_testing(True)``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared_core._client.resilience import reset_resilience
from shared_core._client.transport import set_testing

__all__ = ["Reply", "Seen", "Upstream", "drain_outbox", "reset_resilience", "set_testing", "undocumented_routes"]

#: Routes django-ninja adds that are not operations: the document itself and the API's root.
_NOT_OPERATIONS = frozenset({"openapi-json", "openapi-view", "api-root"})


@dataclass
class Reply:
    """One scripted answer: status, headers, body, and how badly to deliver it."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0  # seconds before anything is sent
    trickle: float = 0.0  # seconds between body bytes
    trickle_headers: float = 0.0  # seconds between header bytes
    drop: bool = False  # close the connection without answering


@dataclass
class Seen:
    """One request the upstream received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_port: int


def _handler_for(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers every method with ``upstream``'s script, delivered as the Reply says."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = upstream._answer(self.command, self.path, dict(self.headers), body, self.client_address[1])
            time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            head += f"Content-Length: {len(reply.body)}\r\n\r\n"
            try:
                self.send_bytes(head.encode(), reply.trickle_headers)
                self.send_bytes(reply.body, reply.trickle)
            except OSError:
                self.close_connection = True

        def send_bytes(self, data: bytes, pause: float) -> None:
            if not pause:
                self.wfile.write(data)
                return
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(pause)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    return Handler


class Upstream:
    """Answers each path with its scripted replies in order, repeating the last one."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = defaultdict(lambda: deque([Reply()]))
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def _answer(self, command: str, path: str, headers: dict[str, str], body: bytes, port: int) -> Reply:
        """Record a request and take its scripted reply."""
        with self.lock:
            self.seen.append(Seen(command, path, headers, body, time.monotonic(), port))
            script = self.scripts[path.split("?")[0]]
            return script.popleft() if len(script) > 1 else script[0]

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` with ``replies`` in order, then keep repeating the last one."""
        self.scripts[path] = deque(replies)

    def hits(self, path: str) -> list[Seen]:
        """The requests received for ``path`` (query strings ignored), oldest first."""
        return [s for s in self.seen if s.path.split("?")[0] == path]

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def drain_outbox(worker_id: str = "test") -> int:
    """Run the outbox's due tasks in this thread until none is left, as the worker container would; how many ran.

    For a service whose settings turn the outbox on (``service_settings(task_queues=...)``), in a
    test that may use the database. A task that fails transiently is put back with its backoff, so
    set ``OUTBOX_BACKOFF_BASE = 0`` to have every retry run in the same call.
    """
    from shared_core.outbox._worker import Worker  # here: its models load only where the outbox is on

    return Worker(worker_id=worker_id).drain()


def undocumented_routes() -> list[str]:
    """The URLconf's routes (as ``/path/{param}/``) that the service's OpenAPI document lacks; ``[]`` is good.

    Every URL pattern counts, whoever serves it: a plain Django view added
    beside the API is reported too, so the document cannot drift from the
    routes. The document is the one every ``NinjaAPI`` in the URLconf serves.
    """
    from django.urls import URLPattern, URLResolver, get_resolver
    from ninja import NinjaAPI

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    routes = list(walk(get_resolver().url_patterns, "/"))
    documented: set[str] = set()
    for _, pattern in routes:
        api = getattr(getattr(pattern.callback, "keywords", {}), "get", lambda _: None)("api")
        if isinstance(api, NinjaAPI):
            documented |= set(api.get_openapi_schema()["paths"])
    openapi = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) for route, p in routes if p.name not in _NOT_OPERATIONS}
    return sorted(openapi - documented)
