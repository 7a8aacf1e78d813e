"""The edge proxy image's contract: offline nginx and HAProxy, non-root, read-only root, JSON refusals, small."""

from __future__ import annotations

import http.client
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager

import docker
import pytest
import requests
from docker.models.containers import Container
from docker.models.images import Image
from docker.models.networks import Network

from shared_core.pytest_plugin import eventually
from tests.image.conftest import Running
from tests.rawhttp import exchange

pytestmark = pytest.mark.docker

#: What the proxy may add over the root filesystem it is built from, in bytes (README).
MAX_ADDED_BYTES = 10_000_000
#: The body limit the test proxy gets, so the 413 case stays small.
UPLOAD_LIMIT = 100_000


@pytest.fixture(scope="session")
def proxy_image(docker_client: docker.DockerClient) -> Image:
    ref = os.environ.get("SHARED_CORE_PROXY_IMAGE")
    if not ref:
        pytest.fail("SHARED_CORE_PROXY_IMAGE is not set: run the image tests with `make test-image`")
    return docker_client.images.get(ref)


def start_app(client: docker.DockerClient, image: Image, network: Network, alias: str) -> Container:
    """The child service, read-only, on ``network`` under the name ``alias``."""
    app = client.containers.run(
        image.id, detach=True, read_only=True, tmpfs={"/tmp": "rw,size=16m"}, network=network.name
    )
    network.disconnect(app)
    network.connect(app, aliases=[alias])
    return app


def start_proxy(client: docker.DockerClient, image: Image, network: Network, **environment: str) -> Running:
    """The proxy, read-only and non-root, on ``network`` with ``environment``, once healthy."""
    ports = [route.split("=")[0] for route in environment["PROXY_ROUTES"].split()]
    proxy = client.containers.run(
        image.id,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": "rw,size=64m"},
        network=network.name,
        environment=environment,
        ports={f"{port}/tcp": ("127.0.0.1", None) for port in ports},
    )
    running = Running(proxy)
    running.wait_healthy()
    return running


@contextmanager
def private_network(client: docker.DockerClient, prefix: str) -> Iterator[Network]:
    """A network of its own, removed with every container still on it."""
    network = client.networks.create(f"{prefix}-{uuid.uuid4().hex[:8]}")
    try:
        yield network
    finally:
        network.reload()
        for container in network.containers:
            container.remove(force=True)
        network.remove()


@pytest.fixture(scope="session")
def edge(docker_client: docker.DockerClient, proxy_image: Image, child_image: Image) -> Iterator[Running]:
    """The proxy, read-only and non-root, in front of a child service on a private network."""
    with private_network(docker_client, "edge-contract") as network:
        start_app(docker_client, child_image, network, "app")
        routes = "8000=app:8000 8001=missing:8000"
        yield start_proxy(
            docker_client, proxy_image, network, PROXY_ROUTES=routes, FILE_UPLOAD_MAX_BYTES=str(UPLOAD_LIMIT)
        )


def raw(edge: Running, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = edge.url.removeprefix("http://").split(":")
    return exchange(host, int(port), request)


def test_proxy_runs_non_root_with_a_read_only_root_and_turns_healthy(edge, proxy_image):
    """User 10001, read-only root with a tmpfs /tmp, its exec HEALTHCHECK healthy, nginx as PID 1."""
    assert proxy_image.attrs["Config"]["User"] == "10001:10001"
    assert edge.container.exec_run(["id", "-u"]).output.decode().strip() == "10001"
    assert edge.container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert "nginx: master process" in edge.container.exec_run(["cat", "/proc/1/cmdline"]).output.decode()


def test_proxy_passes_requests_and_the_request_id_through(edge):
    """A request reaches the service behind, and a safe X-Request-ID comes back unchanged."""
    response = edge.get("/healthz", headers={"X-Request-ID": "edge-contract-1"})
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "edge-contract-1"
    edge.wait_for_log("request_id=edge-contract-1 trace_id=")


TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("traceparent", "continued"),
    [(f"00-{TRACE}-{PARENT}-01", True), (None, False), (f"00-{'0' * 32}-{PARENT}-01", False), ("garbage", False)],
)
def test_the_edge_passes_a_valid_trace_on_and_starts_one_otherwise(edge, traceparent, continued):
    """A valid traceparent reaches the service's trace; none, all-zero or malformed: the edge starts a trace,
    and its access line and the service's name the same trace id."""
    request_id = f"trace-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": request_id, **({"traceparent": traceparent} if traceparent else {})}
    response = edge.get("/healthz", headers={**headers, "tracestate": "congo=t61rcWkgMzE"})
    trace_id = response.headers["traceresponse"].split("-")[1]
    assert (trace_id == TRACE) is continued and trace_id != "0" * 32
    edge.wait_for_log(f"request_id={request_id} trace_id={trace_id} logger=nginx.access")


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: " + b"r" * 9000 + b"\r\n\r\n", 431, "header_too_large"),
        (b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "bad_request"),
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n", 413, "too_large"),
        (b"GET /_edge/400 HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
    ],
)
def test_the_proxys_own_refusals_are_json_with_a_request_id(edge, request_bytes, status, error):
    """Oversized headers, URIs and bodies, and unparseable requests get the JSON envelope, not nginx's HTML."""
    got, headers, body = raw(edge, request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    document = json.loads(body)
    assert got == status and document["error"] == error, (got, body)
    assert headers["content-type"] == "application/json" and document["request_id"] == headers["x-request-id"]


def assert_no_replica(response: requests.Response) -> None:
    """``response`` is the edge's own 503: no replica to send the request to, come back in a second."""
    document = response.json()
    assert response.status_code == 503 and document["error"] == "unavailable", (response.status_code, document)
    assert response.headers["Retry-After"] == "1" and document["request_id"] == response.headers["X-Request-ID"]


def test_an_unreachable_service_is_a_json_503_with_retry_after(edge):
    """A route whose service cannot be resolved answers 503 with the envelope and Retry-After, at once."""
    host = edge.url.rsplit(":", 1)[0]
    port = edge.container.attrs["NetworkSettings"]["Ports"]["8001/tcp"][0]["HostPort"]
    assert_no_replica(requests.get(f"{host}:{port}/healthz", timeout=10))


def upstream_sockets(proxy: Container, port: int = 8000) -> set[str]:
    """The local addresses of ``proxy``'s established TCP connections to ``port``."""
    lines = proxy.exec_run(["cat", "/proc/net/tcp"]).output.decode().splitlines()[1:]
    return {
        local
        for local, remote, state in (line.split()[1:4] for line in lines)
        if remote.endswith(f":{port:04X}") and state == "01"
    }


def connections_opened(proxy: Container) -> int:
    """TCP connections ``proxy`` has opened so far (the kernel's ActiveOpens in its network namespace): to the
    services and for health checks; nginx reaches HAProxy on a Unix socket, which is not counted."""
    snmp = proxy.exec_run(["cat", "/proc/net/snmp"]).output.decode().splitlines()
    names, values = (line.split()[1:] for line in snmp if line.startswith("Tcp:"))
    return int(dict(zip(names, values, strict=True))["ActiveOpens"])


def read_twenty_times(proxy: Running) -> tuple[set[str], int]:
    """Twenty reads through ``proxy``: its connections to the service after them, and how many it opened."""
    opened_before = connections_opened(proxy.container)
    for _ in range(20):
        assert proxy.get("/healthz").status_code == 200
    return upstream_sockets(proxy.container), connections_opened(proxy.container) - opened_before


def test_the_edge_reuses_its_connections_to_a_service(edge):
    """Twenty requests in a row go over kept-alive connections to the service, not one connection each."""
    kept, opened = read_twenty_times(edge)
    assert kept, "no connection to the service is kept open"
    assert opened <= 3, f"{opened} connections opened over 20 requests (a health check each second is 1)"


def test_upstream_keepalive_0_opens_a_connection_per_request(docker_client, proxy_image, child_image):
    """With PROXY_UPSTREAM_KEEPALIVE=0 the proxy opens a new connection to the service for each request."""
    with private_network(docker_client, "edge-no-keepalive") as network:
        start_app(docker_client, child_image, network, "app")
        running = start_proxy(
            docker_client, proxy_image, network, PROXY_ROUTES="8000=app:8000", PROXY_UPSTREAM_KEEPALIVE="0"
        )
        _, opened = read_twenty_times(running)
        assert opened >= 20, f"only {opened} connections opened over 20 requests"


def test_the_edge_follows_a_service_that_comes_and_goes(docker_client, proxy_image, child_image):
    """A service started after the proxy is reached once its name resolves, and a 503 again once it is gone."""
    with private_network(docker_client, "edge-resolve") as network:
        running = start_proxy(
            docker_client, proxy_image, network, PROXY_ROUTES="8000=late:8000", PROXY_RESOLVER_VALID="1"
        )
        assert_no_replica(running.get("/healthz"))
        app = start_app(docker_client, child_image, network, "late")
        eventually(lambda: running.get("/healthz").status_code == 200, 60, "the late service reached")
        app.remove(force=True)
        eventually(lambda: running.get("/healthz").status_code == 503, 60, "a 503 once it is gone")
        assert_no_replica(running.get("/healthz"))


def wait_until_used(proxy: Running, replica: Container) -> None:
    """Read through ``proxy`` until one of the reads reaches ``replica`` (its id in the replica's log)."""
    marked = {"X-Request-ID": uuid.uuid4().hex}
    eventually(
        lambda: proxy.get("/healthz", headers=marked).ok and marked["X-Request-ID"] in replica.logs().decode(),
        60,
        f"a read reaching {replica.short_id}",
    )


def test_a_replica_joining_keeps_the_clients_connection_open(docker_client, proxy_image, child_image):
    """A second replica under the same name is taken into use without closing a client's idle connection."""
    with private_network(docker_client, "edge-join") as network:
        start_app(docker_client, child_image, network, "app")
        running = start_proxy(
            docker_client, proxy_image, network, PROXY_ROUTES="8000=app:8000", PROXY_RESOLVER_VALID="1"
        )
        host, port = running.url.removeprefix("http://").split(":")
        client = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            client.request("GET", "/healthz")
            assert client.getresponse().read() and client.sock is not None
            kept = client.sock.getsockname()
            wait_until_used(running, start_app(docker_client, child_image, network, "app"))
            client.request("GET", "/healthz")  # raises RemoteDisconnected if the proxy closed it meanwhile
            assert client.getresponse().status == 200 and client.sock.getsockname() == kept
        finally:
            client.close()


def test_a_hung_replica_is_routed_around(docker_client, proxy_image, child_image):
    """Of two replicas, one paused (connections open, nothing answers): at most one read waits on it, every
    other read is answered by the live one, and the edge logs the paused one down (its health check)."""
    with private_network(docker_client, "edge-hung") as network:
        replicas = [start_app(docker_client, child_image, network, "app") for _ in range(2)]
        running = start_proxy(docker_client, proxy_image, network, PROXY_ROUTES="8000=app:8000")
        for replica in replicas:  # both in use before one hangs
            wait_until_used(running, replica)
        replicas[0].pause()
        try:
            answers = []
            for _ in range(40):
                try:
                    answers.append(requests.get(running.url + "/healthz", timeout=10).status_code)
                except requests.Timeout:
                    answers.append(0)
            assert answers.count(200) >= 39, answers
            running.wait_for_log("is DOWN")
        finally:
            replicas[0].unpause()


def test_a_full_replica_sheds_load_at_once(docker_client, proxy_image, child_image):
    """One request in flight and one waiting fill a replica (PROXY_REPLICA_MAXCONN=1, PROXY_REPLICA_MAXQUEUE=1):
    a third is answered JSON 503 with Retry-After at once, and the two others are served."""
    with private_network(docker_client, "edge-shed") as network:
        app = start_app(docker_client, child_image, network, "app")
        running = start_proxy(
            docker_client,
            proxy_image,
            network,
            PROXY_ROUTES="8000=app:8000",
            PROXY_REPLICA_MAXCONN="1",
            PROXY_REPLICA_MAXQUEUE="1",
        )
        slow = running.url + "/slow?seconds=4"
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(requests.get, slow, timeout=30)
            eventually(lambda: "slow request started" in app.logs().decode(), 30, "the first request in flight")
            # Whichever of these comes second finds the one place in the queue taken.
            others = [pool.submit(requests.get, slow, timeout=30) for _ in range(2)]
            refused = next(as_completed(others), None)
            assert refused is not None
            shed = refused.result()
            assert shed.status_code == 503 and shed.elapsed.total_seconds() < 2, (shed.status_code, shed.elapsed)
            assert_no_replica(shed)
            assert first.result().status_code == 200
            assert [other.result().status_code for other in others if other is not refused] == [200]


def test_query_strings_and_tokens_never_reach_the_proxys_log(edge):
    """The access line has the path, never the query string or the Authorization header."""
    secret, request_id = f"s3cr3t-{uuid.uuid4().hex}", f"query-{uuid.uuid4().hex}"
    edge.get(
        f"/healthz?access_token={secret}", headers={"Authorization": f"Bearer {secret}", "X-Request-ID": request_id}
    )
    edge.wait_for_log(f"request_id={request_id} trace_id=")
    assert secret not in edge.logs()


@pytest.mark.parametrize(("name", "value"), [("FILE_UPLOAD_MAX_BYTES", "10MB"), ("PROXY_UPSTREAM_TIMEOUT", "soon")])
def test_a_malformed_setting_stops_the_proxy_with_one_line_naming_it(docker_client, proxy_image, name, value):
    """A number setting that is not a whole number: exit 1 and one line naming the variable and its value."""
    container = docker_client.containers.run(
        proxy_image.id, detach=True, read_only=True, tmpfs={"/tmp": "rw,size=16m"}, environment={name: value}
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        lines = container.logs().decode().strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and value in lines[0], lines
    finally:
        container.remove(force=True)


def test_proxy_image_labels_and_stop_signal(proxy_image):
    """OCI labels, and SIGQUIT to stop: nginx then finishes in-flight requests before it exits."""
    labels = proxy_image.attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "shared-core edge proxy"
    assert labels["org.opencontainers.image.version"] not in ("", "0.0.0")
    assert proxy_image.attrs["Config"]["StopSignal"] == "SIGQUIT"


def installed(docker_client: docker.DockerClient, image: str) -> dict[str, int]:
    """Package name to installed bytes, from dpkg's database in ``image``."""
    listing = docker_client.containers.run(
        image, ["dpkg-query", "-W", "-f", "${Package} ${Installed-Size}\n"], entrypoint=[], remove=True
    )
    return {name: int(size) * 1024 for name, size in (line.split() for line in listing.decode().splitlines())}


def test_proxy_adds_under_10_mb_over_the_projects_debian_root(docker_client, proxy_image):
    """nginx, HAProxy and every package they brought that the project's own Debian root lacks install under 10 MB."""
    root = os.environ.get("ROOT_IMAGE", "shared-core/root:trixie")
    added = {
        name: size
        for name, size in installed(docker_client, proxy_image.id).items()
        if name not in installed(docker_client, root)
    }
    assert {"nginx", "haproxy"} <= added.keys() and sum(added.values()) < MAX_ADDED_BYTES, added
