"""Two ways to create a row that must tell a neighbour: enqueue an outbox task in the row's transaction,
or call the neighbour synchronously after the insert (what ticket-service did before the outbox)."""

from functools import cache

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django_tasks import TaskContext, task

from bench.scaleapp.models import LiveRow
from shared_core.clients import HTTPClient
from shared_core.outbox import delivery_key


@cache
def neighbour() -> HTTPClient:
    return HTTPClient(settings.BENCH_UPSTREAM, token="bench")


@task(takes_context=True, queue_name="bench")
def notify(context: TaskContext, row_id: str) -> None:
    neighbour().post_json("/hook/", {"row_id": row_id}, idempotency_key=delivery_key(context))


def create_with_outbox(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        row = LiveRow.objects.create(code="t")
        notify.enqueue(str(row.id))
    return JsonResponse({"id": str(row.id)}, status=201)


def create_with_call(request: HttpRequest) -> JsonResponse:
    row = LiveRow.objects.create(code="t")
    neighbour().post_json("/hook/", {"row_id": str(row.id)}, idempotency_key=f"row-{row.id}")
    return JsonResponse({"id": str(row.id)}, status=201)


urlpatterns = [path("outbox/", create_with_outbox), path("call/", create_with_call)]
