"""One deadline over SQL: statements are bounded by the budget the request has left (shared_core._web.db)."""

import time

import pytest
from django.db import connection, transaction

from shared_core._web.db import statement_deadline
from shared_core.context import Deadline

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = {"HTTP_AUTHORIZATION": "Bearer unit-test-service-token"}
#: Generous bound on how far past its deadline an answer may come, on a busy machine.
MARGIN = 1.0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_slow_statement_is_cut_at_the_deadline_with_504(client):
    """A 5 s statement under a 0.5 s budget is cut by PostgreSQL at the deadline and answered 504 JSON."""
    start = time.monotonic()
    response = client.get("/api/slow-sql/?seconds=5", HTTP_X_REQUEST_DEADLINE="0.5", HTTP_X_REQUEST_ID="sql-1", **AUTH)
    elapsed = time.monotonic() - start
    assert response.status_code == 504 and response.json()["error"] == "deadline_exceeded"
    assert response.json()["request_id"] == "sql-1"
    assert elapsed < 0.5 + MARGIN


def statement_timeout() -> str:
    """The connection's statement_timeout as PostgreSQL reports it ("0": unbounded)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return str(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_statement_timeout_is_reset_after_the_request(client):
    """After a request with a deadline, the connection's statement_timeout is its default again."""
    assert client.get("/api/slow-sql/?seconds=0", HTTP_X_REQUEST_DEADLINE="3", **AUTH).status_code == 200
    assert statement_timeout() == "0"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
@pytest.mark.parametrize("rolled_back", [False, True])
def test_a_deadline_that_ends_inside_a_transaction_leaves_no_timeout_behind(rolled_back):
    """A deadline block inside a transaction: its later statements, and the session after its commit or
    rollback, are unbounded."""
    with transaction.atomic():
        with statement_deadline(Deadline.after(3)), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert statement_timeout() == "0"
        transaction.set_rollback(rolled_back)
    assert statement_timeout() == "0"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_a_statement_timeout_outside_the_wrapper_is_504_under_a_deadline(client):
    """PostgreSQL's statement_timeout error from outside the wrapper (a COMMIT, say) is a 504 under a deadline,
    and stays Django's 500 without one (then it is not ours to explain)."""
    under = client.get("/api/cut-outside-the-wrapper/", HTTP_X_REQUEST_DEADLINE="5", **AUTH)
    assert under.status_code == 504 and under.json()["error"] == "deadline_exceeded"
    client.raise_request_exception = False
    without = client.get("/api/cut-outside-the-wrapper/", **AUTH)
    assert without.status_code == 500


def test_statement_sent_after_the_budget_is_spent_gets_504(client):
    """On any database, a statement the view sends after its budget ran out is refused: 504 JSON."""
    if connection.vendor == "postgresql":
        pytest.skip("covered by the statement_timeout test; pg_sleep is cut instead")
    response = client.get("/api/slow-sql/?seconds=0.2", HTTP_X_REQUEST_DEADLINE="0.05", **AUTH)
    assert response.status_code == 504 and response.json()["error"] == "deadline_exceeded"


def test_without_a_deadline_statements_are_unbounded(client):
    """A request without X-Request-Deadline runs its statements as before."""
    assert client.get("/api/slow-sql/?seconds=0.1", **AUTH).json() == {"slept": 0.1}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend is PostgreSQL's")
def test_a_connection_the_database_ends_mid_request_is_a_json_503(client):
    """The server ends the request's connection (a restart, say): 503 database_unavailable with Retry-After."""
    response = client.get("/api/database-gone/", HTTP_X_REQUEST_ID="gone-1", **AUTH)
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response.json() | {"detail": ""} == {"error": "database_unavailable", "detail": "", "request_id": "gone-1"}
    connection.close()  # as Django does before the next request (the test client skips that signal)
