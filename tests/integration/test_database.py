"""The stack on PostgreSQL: a database restart under running services costs no failed request."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import API_PATHS, SERVICES

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.environ.get("DB") != "postgres", reason="runs in the DB=postgres pass"),
]

#: Requests per service: more than gunicorn's 2 workers x 4 threads, so every thread holds a connection.
REQUESTS = 24


def test_postgres_restart_costs_no_failed_request(stack):
    """Every worker thread keeps a connection; PostgreSQL restarts; the next requests all succeed at once."""

    def statuses() -> list[int]:
        calls = [(service, API_PATHS[service]) for service in SERVICES for _ in range(REQUESTS)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda call: stack.call("GET", *call).status_code, calls))

    assert set(statuses()) == {200}  # every thread now holds a persistent connection
    stack.container("postgres").restart(timeout=30)
    stack.wait_healthy("postgres")
    after = statuses()
    assert after == [200] * len(after), after
