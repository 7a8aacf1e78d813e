"""Outbox tasks of the test app: a delivery to a local upstream, and a task with a bug."""

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
