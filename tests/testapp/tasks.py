"""Outbox tasks of the test app: a delivery to a local upstream, and a task with a bug."""

from django.db import connection
from django_tasks import TaskContext, task

from shared_core.clients import HTTPClient
from shared_core.outbox import delivery_key


@task(takes_context=True, queue_name="hooks")
def deliver(context: TaskContext, base_url: str, payload: dict[str, str]) -> int:
    """POST ``payload`` to ``base_url``/hook/ (one attempt per outbox attempt); returns the attempt number."""
    HTTPClient(base_url, retries=0).post_json("/hook/", payload, idempotency_key=delivery_key(context))
    return context.attempt


@task()
def broken() -> None:
    raise ValueError("a bug in the task")


@task(takes_context=True)
def database_hiccup(context: TaskContext, failures: int) -> int:
    """Fails with a real OperationalError on the first ``failures`` attempts, then succeeds; returns the attempt.

    On PostgreSQL the server ends the task's own connection (as a restart does); SQLite reports a table that is
    not there (both drivers' OperationalError).
    """
    if context.attempt <= failures:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            else:
                cursor.execute("SELECT * FROM a_table_that_is_not_there_yet")
    return context.attempt
