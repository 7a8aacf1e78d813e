"""The stack on PostgreSQL: a database restart under running services costs no failed request."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack import SERVICES
from tests.integration.conftest import API_PATHS, eventually

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.environ.get("DB") != "postgres", reason="runs in the DB=postgres pass"),
]

#: Requests per service: more than gunicorn's 2 workers x 4 threads, so every thread holds a connection.
REQUESTS = 24


def test_postgres_restart_costs_no_failed_request(stack):
    """Every worker thread keeps a connection; PostgreSQL restarts; the next requests all succeed at once, and
    the outbox workers ride it out: same containers, and a ticket made afterwards is notified."""
    workers = {w.name: w.attrs["State"]["StartedAt"] for w in stack.containers("ticket-worker")}

    def statuses() -> list[int]:
        calls = [(service, API_PATHS[service]) for service in SERVICES for _ in range(REQUESTS)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda call: stack.call("GET", *call).status_code, calls))

    assert set(statuses()) == {200}  # every thread now holds a persistent connection
    stack.container("postgres").restart(timeout=30)
    stack.wait_healthy("postgres")
    after = statuses()
    assert after == [200] * len(after), after
    user = stack.call("POST", "user-service", "/api/users/", json={"email": "pg-restart@example.com", "name": "P"})
    body = {"title": "t", "requester_id": user.json()["id"]}
    ticket = stack.call("POST", "ticket-service", "/api/tickets/", json=body)
    path = f"/api/tickets/{ticket.json()['id']}/"

    def delivered() -> bool:
        return stack.call("GET", "ticket-service", path).json()["notification"] == "delivered"

    eventually(delivered, 60, "a notification delivered after the restart")
    for worker in stack.containers("ticket-worker"):
        assert worker.attrs["State"]["Running"] and workers[worker.name] == worker.attrs["State"]["StartedAt"]


def test_postgres_takes_its_password_from_a_secret_file(stack, tmp_path):
    """POSTGRES_PASSWORD_FILE, as Swarm and Kubernetes mount secrets: the password in the file opens a session,
    another is refused, and the value never reaches the container's environment."""
    secret = tmp_path / "postgres-password"
    secret.write_text("from-a-secret-file\n")
    secret.chmod(0o644)
    image = stack.container("postgres").image.id
    container = stack.client.containers.run(
        image,
        detach=True,
        environment={"POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password", "POSTGRES_DATABASES": "probe"},
        volumes={str(secret): {"bind": "/run/secrets/postgres-password", "mode": "ro"}},
        tmpfs={"/tmp": "", "/run/postgresql": "", "/var/lib/postgresql/data": "uid=100,gid=102,mode=0700"},
    )
    try:

        def session(password: str) -> int | None:
            query = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "probe", "-tAc", "SELECT 1"]
            result = container.exec_run(query, environment={"PGPASSWORD": password})
            return result.exit_code if b"starting up" not in result.output else None

        status = eventually(
            lambda: session("from-a-secret-file") == 0 or None, 60, "PostgreSQL with the file's password"
        )
        assert status and session("not-the-password") not in (0, None)
        assert "from-a-secret-file" not in str(container.attrs["Config"]["Env"])
    finally:
        container.remove(force=True)
