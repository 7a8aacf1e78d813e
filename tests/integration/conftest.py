"""The integration suite's configuration: pytest-docker brings the real stack up once per run.

Black-box: nothing here imports project code. The stack is compose/compose.yaml plus
tests/integration/compose.test.yaml, under a per-run project name, on random 127.0.0.1 ports,
with a per-run token. Readiness comes from the containers' healthchecks.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest
import requests
from docker.models.containers import Container

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
#: Generous bound for a container to become healthy on a busy 2-core machine.
HEALTHY_WITHIN = 120.0
#: What the suite sets as HTTP_CLIENT_DEADLINE in the services it starts.
CLIENT_DEADLINE = 3.0
#: Generous bound on how far past a deadline a reply may come, on a busy 2-core machine.
MARGIN = 2.0
#: A list endpoint of each service.
API_PATHS = {
    "user-service": "/api/users/",
    "ticket-service": "/api/tickets/",
    "communication-service": "/api/notifications/",
    "file-service": "/api/files/",
}
#: The edge proxy's port for each service; only the proxy publishes the services to the host.
EDGE_PORTS = {"user-service": 8001, "ticket-service": 8002, "communication-service": 8003, "file-service": 8004}


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """`docker compose` (v2) where it exists, else `docker-compose` (v1)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return "docker compose" if v2.returncode == 0 else "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    """The product's stack, on PostgreSQL when DB=postgres, plus the test-only upstream and chaos services."""
    files = [ROOT / "compose" / "compose.yaml", ROOT / "tests" / "integration" / "compose.test.yaml"]
    if os.environ.get("DB") == "postgres":
        files.insert(1, ROOT / "compose" / "compose.postgres.yaml")
    return [str(f) for f in files]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    """A fresh project per run, so two runs never collide."""
    return f"scit{uuid.uuid4().hex[:10]}"


#: The per-caller tokens compose/compose.yaml requires; the suite itself calls as the operator.
CALLER_TOKENS = ("OPERATOR_TOKEN", "TICKET_SERVICE_TOKEN", "COMMUNICATION_SERVICE_TOKEN", "FILE_SERVICE_TOKEN")
#: Outbox workers of ticket-service in the stack (compose.test.yaml scales ticket-worker to two).
TICKET_WORKERS = 2
#: Characters a password may hold that break a URL (user info, path, port, escapes) unless percent-encoded.
URL_BREAKING = "@/:%?#"
#: Generous bound for a log line written after a response to show up in `docker logs`.
LOG_WITHIN = 30.0


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """A fresh token per caller for this run (keys as in CALLER_TOKENS)."""
    return {name: secrets.token_urlsafe(24) for name in CALLER_TOKENS}


@pytest.fixture(scope="session")
def token(tokens: dict[str, str]) -> str:
    """The operator's token, which the suite sends."""
    return tokens["OPERATOR_TOKEN"]


@pytest.fixture(scope="session")
def stack_env(tokens: dict[str, str]) -> Iterator[None]:
    """The environment Compose reads: base image, per-run secrets, random host ports, a short deadline."""
    base = os.environ.get("SHARED_CORE_BASE_IMAGE")
    if not base:
        pytest.fail("SHARED_CORE_BASE_IMAGE is not set: run the suite with `make test-integration`")
    values = {
        "BASE_IMAGE": base,
        "SHARED_CORE_VERSION": base.rsplit(":", 1)[-1],
        **tokens,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "HTTP_CLIENT_DEADLINE": str(CLIENT_DEADLINE),
        "USER_PORT": "",
        "TICKET_PORT": "",
        "COMMUNICATION_PORT": "",
        "FILE_PORT": "",
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        "PROXY_RESOLVER_VALID": "1",
        # Retries come back within 2 s, and a stopped neighbour is waited for rather than given up on.
        "OUTBOX_BACKOFF_MAX": "2",
        "OUTBOX_MAX_ATTEMPTS": "1000",
        # The characters that break a database URL unless encoded: the stack must take them.
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24) + URL_BREAKING,
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_setup(stack_env: None) -> list[str]:
    """Build and start; healthchecks are awaited by the `stack` fixture (Compose v1 has no --wait)."""
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v --remove-orphans"]


def eventually(check: Callable[[], T | None], within: float, what: str, state: Callable[[], object] | None = None) -> T:
    """Poll ``check`` every 0.25 s until it returns something truthy (returned), for at most ``within`` s.

    On timeout the error shows ``state()`` (what was seen), or the last outcome.
    """
    give_up = time.monotonic() + within
    while not (outcome := check()):
        if time.monotonic() > give_up:
            raise AssertionError(f"{what}: not within {within} s (last: {state() if state else outcome!r})")
        time.sleep(0.25)
    return outcome


class Stack:
    """The running stack: containers, base URLs and helpers."""

    def __init__(self, client: docker.DockerClient, project: str, token: str, compose: list[str]) -> None:
        self.client, self.project, self.token = client, project, token
        self.auth = {"Authorization": f"Bearer {token}"}
        self._compose = compose

    def compose(self, *args: str) -> None:
        """Run a Compose command on this stack, with the environment as it is now (os.environ)."""
        subprocess.run([*self._compose, *args], check=True, capture_output=True, env=os.environ)

    def container(self, service: str) -> Container:
        (found,) = self.containers(service)
        return found

    def containers(self, service: str) -> list[Container]:
        """Every container of ``service`` (a scaled service has several)."""
        return self.client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]},
        )

    def all_containers(self) -> list[Container]:
        return self.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})

    def url(self, service: str) -> str:
        """Where the host reaches ``service``: its port on the edge proxy, or a test container's own port."""
        container = self.container("proxy" if service in EDGE_PORTS else service)
        container.reload()
        published = f"{EDGE_PORTS.get(service, 8000)}/tcp"
        port = container.attrs["NetworkSettings"]["Ports"][published][0]["HostPort"]
        return f"http://127.0.0.1:{port}"

    def wait_healthy(self, *services: str) -> None:
        """Wait for the healthchecks of ``services`` (all when none) to report healthy."""
        give_up = time.monotonic() + HEALTHY_WITHIN
        pending = [c for s in services for c in self.containers(s)] if services else self.all_containers()
        while pending:
            container = pending[0]
            container.reload()
            service = container.labels["com.docker.compose.service"]
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy" and self._routed(service):
                pending.pop(0)
                continue
            if time.monotonic() > give_up:
                raise AssertionError(f"{container.name} not healthy: {container.attrs['State']}")
            time.sleep(0.25)

    def _routed(self, service: str) -> bool:
        """Whether the edge reaches ``service`` (after a restart it may still hold the old address a moment)."""
        if service not in EDGE_PORTS:
            return True
        try:
            return requests.get(self.url(service) + "/healthz", timeout=5).status_code == 200
        except (requests.RequestException, KeyError, ValueError):
            return False

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated call to ``service`` from the host (30 s timeout)."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return requests.request(method, self.url(service) + path, headers=headers, timeout=30, **kwargs)

    def logs(self, service: str) -> str:
        return self.container(service).logs().decode(errors="replace")

    def wait_for_log(self, service: str, text: str) -> str:
        """``service``'s log once it contains ``text``: lines written after a response arrive a little later."""
        give_up = time.monotonic() + LOG_WITHIN
        while text not in (logs := self.logs(service)):
            if time.monotonic() > give_up:
                raise AssertionError(f"{text!r} not in {service}'s log within {LOG_WITHIN} s")
            time.sleep(0.1)
        return logs

    def outbox(self, service: str = "ticket-service") -> dict[str, int]:
        """``manage.py outbox status`` in ``service``, summed over its queues."""
        result = self.container(service).exec_run(["python3", "manage.py", "outbox", "status", "--json"])
        assert result.exit_code == 0, result.output.decode()
        queues = json.loads(result.output)["queues"]
        return {key: sum(q[key] for q in queues) for key in ("ready", "scheduled", "running", "failed")}

    def idle(self, service: str = "ticket-service") -> bool:
        """Whether ``service``'s outbox has nothing due, waiting to retry, or running."""
        counts = self.outbox(service)
        return counts["ready"] + counts["scheduled"] + counts["running"] == 0

    def manage(self, service: str, code: str) -> str:
        """Run Python in ``service`` with Django set up (manage.py shell) and return its output."""
        result = self.container(service).exec_run(["python3", "manage.py", "shell", "-v", "0", "-c", code])
        assert result.exit_code == 0, result.output.decode()
        return result.output.decode().strip()


@pytest.fixture(scope="session")
def stack(
    docker_client: docker.DockerClient,
    docker_services: Any,
    docker_compose_command: str,
    docker_compose_file: list[str],
    docker_compose_project_name: str,
    token: str,
) -> Stack:
    """The whole stack, every container healthy."""
    compose = [*docker_compose_command.split(), "-p", docker_compose_project_name]
    for path in docker_compose_file:
        compose += ["-f", path]
    running = Stack(docker_client, docker_compose_project_name, token, compose)
    running.wait_healthy()
    return running


@pytest.fixture
def upstream(stack: Stack) -> Iterator[Any]:
    """The scriptable upstream, reset before and after each test."""

    class Control:
        base = stack.url("upstream")

        def script(self, path: str, *replies: dict[str, Any]) -> None:
            requests.post(f"{self.base}/_script", json={"path": path, "replies": list(replies)}, timeout=10)

        def seen(self, path: str) -> list[dict[str, Any]]:
            return requests.get(f"{self.base}/_seen", params={"path": path}, timeout=10).json()

    control = Control()
    # ticket-chaos delivers its notifications to the upstream later: let an earlier test's finish first.
    eventually(lambda: stack.idle("ticket-chaos"), LOG_WITHIN, "ticket-chaos's outbox idle", stack.outbox)
    requests.post(f"{control.base}/_reset", timeout=10)
    yield control
    requests.post(f"{control.base}/_reset", timeout=10)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, attach the last log lines of every container, so the failure explains itself."""
    outcome = yield
    report = outcome.get_result()
    stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(stack, Stack):
        for container in stack.all_containers():
            tail = container.logs(tail=25).decode(errors="replace")
            report.sections.append((f"container {container.name} (last 25 lines)", tail))
