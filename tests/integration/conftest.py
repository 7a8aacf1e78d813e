"""The integration suite's configuration: shared_core's pytest plugin brings the real stack up once per run.

Black-box: nothing here imports project code but the plugin. The stack is compose/compose.yaml plus
tests/integration/compose.test.yaml, under a per-run project name, on random 127.0.0.1 ports,
with per-run tokens. Readiness comes from the containers' healthchecks.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from docker.models.containers import Container

from devstack import ROOT
from shared_core.pytest_plugin import ComposeStack, eventually

__all__ = ["API_PATHS", "CLIENT_DEADLINE", "LOG_WITHIN", "MARGIN", "ROOT", "TICKET_WORKERS", "Stack", "eventually"]

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
def compose_files() -> list[str]:
    """The product's stack, on PostgreSQL when DB=postgres, plus the test-only upstream and chaos services."""
    files = [ROOT / "compose" / "compose.yaml", ROOT / "tests" / "integration" / "compose.test.yaml"]
    if os.environ.get("DB") == "postgres":
        files.insert(1, ROOT / "compose" / "compose.postgres.yaml")
    return [str(f) for f in files]


#: The per-caller tokens compose/compose.yaml requires; the suite itself calls as the operator.
CALLER_TOKENS = (
    "OPERATOR_TOKEN",
    "TICKET_SERVICE_TOKEN",
    "COMMUNICATION_SERVICE_TOKEN",
    "FILE_SERVICE_TOKEN",
    "GUEST_SERVICE_TOKEN",  # another team's service, let in through EXTRA_CALLERS
)
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
def compose_env(tokens: dict[str, str]) -> dict[str, str]:
    """The environment Compose reads: base image, per-run secrets, random host ports, a short deadline."""
    base = os.environ.get("SHARED_CORE_BASE_IMAGE")
    if not base:
        pytest.fail("SHARED_CORE_BASE_IMAGE is not set: run the suite with `make test-integration`")
    return {
        "BASE_IMAGE": base,
        "SHARED_CORE_VERSION": base.rsplit(":", 1)[-1],
        **tokens,
        "EXTRA_CALLERS": f"guest-service={tokens['GUEST_SERVICE_TOKEN']}",
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


@pytest.fixture(scope="session")
def compose_token(token: str) -> str:
    """The suite calls as the operator."""
    return token


class Stack(ComposeStack):
    """The product's stack: its services reached through the edge proxy, plus the outbox's state."""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, service: str, port: int = 8000) -> str:
        """Where the host reaches ``service``: its port on the edge proxy, or a test container's own port."""
        if service in EDGE_PORTS:
            return super().url("proxy", EDGE_PORTS[service])
        return super().url(service, port)

    def ready(self, container: Container) -> bool:
        """Healthy, and for a service behind the edge, reached through it (after a restart the edge may
        still hold the old address a moment)."""
        if not super().ready(container):
            return False
        service = container.labels["com.docker.compose.service"]
        if service not in EDGE_PORTS:
            return True
        try:
            return requests.get(self.url(service) + "/healthz", timeout=5).status_code == 200
        except (requests.RequestException, KeyError, ValueError):
            return False

    def wait_for_log(self, service: str, text: str) -> str:
        """``service``'s log once it contains ``text``: lines written after a response arrive a little later."""

        def holding() -> str | None:
            logs = self.logs(service)
            return logs if text in logs else None

        return eventually(holding, LOG_WITHIN, f"{text!r} in {service}'s log")

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


@pytest.fixture(scope="session")
def compose_stack_class() -> type[Stack]:
    return Stack


@pytest.fixture(scope="session")
def stack(compose_stack: Stack) -> Stack:
    """The whole stack, every container healthy."""
    return compose_stack


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
