"""HTTPClient's deadline below HTTP: TLS handshakes, name resolution, and pooled connections shared by threads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from urllib3 import HTTPConnectionPool, PoolManager

from shared_core._client.deadline import Call, current_call, watched_pool_classes
from shared_core._client.transport import ServiceRetry
from shared_core.clients import HTTPClient, HTTPTimeoutError
from shared_core.context import Deadline
from shared_core.testing import Reply, Upstream, set_testing

ROOT = Path(__file__).resolve().parents[2]
#: Generous upper bound on how far past its deadline a call may end on a busy 2-core machine.
MARGIN = 1.0
#: Generous bound on any wait for a thread or server in these tests.
WAIT = 30.0


@pytest.fixture(autouse=True)
def no_sleeps() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_upstream(ca: trustme.CA) -> Iterator[Upstream]:
    """A real HTTPS server on 127.0.0.1, with a certificate from a throwaway CA."""
    server = Upstream()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    with server:
        yield server


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class Listener:
    """A TCP server on 127.0.0.1 whose connections are handled by ``handle(client)`` on their own threads."""

    def __init__(self, handle) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.handle, self.stop, self.open = handle, threading.Event(), []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.open.append(client)
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(WAIT)
        for client in self.open:
            client.close()
        self.sock.close()


def test_https_call_through_a_real_tls_server(tls_upstream, ca_file):
    """A call over TLS to a real server, verified against its CA, returns the upstream's answer."""
    client = HTTPClient(f"https://127.0.0.1:{tls_upstream.server.server_address[1]}", token="t", deadline=5)
    assert client.get_json("/x", verify=ca_file) == {"ok": True}


def test_deadline_holds_when_the_tls_handshake_never_completes():
    """A peer that accepts TCP but never answers the ClientHello cannot hold a call past its deadline."""
    with Listener(lambda client: None) as silent:
        client = HTTPClient(f"https://127.0.0.1:{silent.port}", timeout=(3.05, 10.0), deadline=0.5, retries=3)
        start = time.monotonic()
        with pytest.raises(HTTPTimeoutError):
            client.get("/")
        assert time.monotonic() - start < 0.5 + MARGIN


def test_deadline_holds_against_a_trickled_tls_handshake(tls_upstream, ca_file):
    """A real TLS server whose handshake bytes arrive one every 20 ms cannot hold a call past its deadline."""
    backend = ("127.0.0.1", tls_upstream.server.server_address[1])

    def trickle(client: socket.socket) -> None:
        """Pass the client's bytes on at once and the server's one every 20 ms, until either side closes."""
        with contextlib.suppress(OSError), socket.create_connection(backend) as server:
            client.settimeout(0.01)
            server.settimeout(0.01)
            while True:
                with contextlib.suppress(TimeoutError):
                    data = client.recv(65536)
                    if not data:
                        return
                    server.sendall(data)
                with contextlib.suppress(TimeoutError):
                    byte = server.recv(1)
                    if not byte:
                        return
                    client.sendall(byte)
                    time.sleep(0.02)

    with Listener(trickle) as proxy:
        client = HTTPClient(f"https://127.0.0.1:{proxy.port}", timeout=(3.05, 10.0), deadline=0.5, retries=3)
        start = time.monotonic()
        with pytest.raises(HTTPTimeoutError):
            client.get("/", verify=ca_file)
        assert time.monotonic() - start < 0.5 + MARGIN


def test_watchdog_never_cuts_a_connection_another_call_took_over():
    """A's deadline passing after the pool handed its connection to B leaves B's keyless POST untouched."""
    with Upstream() as upstream:
        upstream.script("/held", Reply(200, b'{"stored": true}', delay=0.3))
        pool = PoolManager(maxsize=1)
        pool.pool_classes_by_scheme = watched_pool_classes
        first = Call(Deadline.after(WAIT), idempotent=True)
        token = current_call.set(first)
        try:
            assert pool.request("GET", f"{upstream.url}/a").status == 200  # body read: connection back in the pool
        finally:
            current_call.reset(token)
        # `first` is not finished: the watchdog may still fire for it, as in the window before finish().
        second, out = Call(None, idempotent=False), {}

        def post() -> None:
            current_call.set(second)
            try:
                out["response"] = pool.request("POST", f"{upstream.url}/held", body=b"x", retries=False)
            except Exception as exc:  # re-raised by the assertion below
                out["error"] = exc

        thread = threading.Thread(target=post)
        thread.start()
        give_up = time.monotonic() + WAIT
        while not upstream.hits("/held") and time.monotonic() < give_up:
            time.sleep(0.005)
        first.abort()  # what the watchdog does at first's deadline
        thread.join(WAIT)
    assert "error" not in out, out
    assert out["response"].status == 200 and out["response"].data == b'{"stored": true}'
    assert upstream.hits("/held")[0].client_port == upstream.hits("/a")[0].client_port  # the same connection


STALLED_DNS_SCRIPT = textwrap.dedent(
    """
    import json, socket, threading, time
    from shared_core.clients import HTTPClient, HTTPClientError

    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind(("127.0.0.1", 53))  # receives every query and answers none
    threading.Thread(target=lambda: [resolver.recvfrom(4096) for _ in iter(int, 1)], daemon=True).start()
    client = HTTPClient("http://service.stalled-dns.test:8000", deadline=0.5, retries=2)
    start = time.monotonic()
    try:
        client.get("/")
        outcome = "answered"
    except HTTPClientError as exc:
        outcome = type(exc).__name__
    print(json.dumps({"outcome": outcome, "elapsed": time.monotonic() - start}))
    """
)


def test_a_stalled_resolver_cannot_hold_a_call_past_its_deadline(tmp_path):
    """With a DNS server that never answers, the call ends at its deadline, not the resolver's timeouts."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with unshare: this test needs a private network namespace")
        pytest.skip("needs root and unshare for a private network namespace with its own resolver")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:3\n")
    inner = f'ip link set lo up && mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} -c "$SCRIPT"'
    result = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", inner],
        env={**os.environ, "SCRIPT": STALLED_DNS_SCRIPT, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "HTTPDeadlineExceeded" and report["elapsed"] < 0.5 + MARGIN, report


def test_a_deadline_spent_in_the_retry_loop_hands_back_the_response_and_its_connection():
    """A 503 read once the deadline has passed ends the retries with that 503, whose connection goes back to
    the pool: a one-connection pool serves the next call (it waited for a connection the collector held)."""
    set_testing(True)
    with Upstream() as upstream:
        upstream.script("/busy", Reply(503, headers={"Retry-After": "0"}))
        host, port = upstream.url.removeprefix("http://").split(":")
        pool = HTTPConnectionPool(host, int(port), maxsize=1, block=True)
        token = current_call.set(Call(Deadline(time.monotonic() - 1), idempotent=True))
        try:
            retries = ServiceRetry(3, status_forcelist=[503], raise_on_status=False)
            spent = pool.urlopen("GET", "/busy", retries=retries, preload_content=False, pool_timeout=2)
        finally:
            current_call.reset(token)
            set_testing(False)
        assert spent.status == 503 and len(upstream.hits("/busy")) == 1
        spent.read()
        spent.release_conn()
        assert pool.urlopen("GET", "/busy", retries=False, pool_timeout=2).status == 503
