"""A small API on shared_core.api, for its unit tests (not shipped)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from shared_core.api import (
    ERROR_RESPONSES,
    IdempotencyKey,
    KeysetPagination,
    ListFilters,
    ServiceToken,
    Timestamp,
    create_once,
    get_or_404,
    restore_or_409,
    service_api,
    soft_delete_routes,
    text,
    visible,
)
from shared_core.clients import HTTPClient
from tests.testapp.models import Author, Ledger, Receipt

router = Router()


class AuthorIn(Schema):
    name: text(100)
    email: text(254)


class AuthorOut(Schema):
    id: UUID
    name: str
    created_at: datetime


class ReceiptIn(Schema):
    amount: int
    note: text(100, blank=True) = ""


class ReceiptOut(Schema):
    id: UUID
    amount: int
    note: str


class When(Schema):
    at: Timestamp


@router.post("/authors/", response={201: AuthorOut, **ERROR_RESPONSES})
def create_author(request: HttpRequest, payload: AuthorIn) -> Status[Author]:
    return Status(201, Author.objects.create(name=payload.name, email=payload.email))


@router.get("/authors/", response={200: list[AuthorOut], **ERROR_RESPONSES})
@paginate(KeysetPagination)
def list_authors(request: HttpRequest, filters: Query[ListFilters]) -> Any:
    return visible(Author, filters)


@router.delete("/authors/{author_id}/", response={204: None, **ERROR_RESPONSES})
def delete_author(request: HttpRequest, author_id: UUID) -> Status[None]:
    get_or_404(Author.objects.all(), author_id, "author").soft_delete()
    return Status(204, None)


@router.post("/authors/{author_id}/restore/", response={200: AuthorOut, **ERROR_RESPONSES})
def restore_author(request: HttpRequest, author_id: UUID) -> Author:
    author = get_or_404(Author.all_objects.all(), author_id, "author")
    restore_or_409(author, "author with this email")
    return author


@router.post("/receipts/", response={200: ReceiptOut, 201: ReceiptOut, **ERROR_RESPONSES})
def create_receipt(
    request: HttpRequest, response: HttpResponse, payload: ReceiptIn, key: IdempotencyKey = None
) -> Status[Receipt]:
    def create(idempotency: dict[str, str | None]) -> Receipt:
        return Receipt.objects.create(**payload.model_dump(), **idempotency)

    return create_once(response, Receipt, key, payload, create)


@router.post("/when/", response={200: When, **ERROR_RESPONSES})
def when(request: HttpRequest, payload: When) -> When:
    return payload


@router.get("/upstream/", response={200: dict[str, Any], **ERROR_RESPONSES})
def upstream(request: HttpRequest) -> Any:
    return HTTPClient(settings.TEST_UPSTREAM_URL, deadline=0.5, retries=1, token="t").get_json("/x")


@router.get("/tickets-only/", response={200: dict[str, str], **ERROR_RESPONSES}, auth=ServiceToken("ticket-service"))
def tickets_only(request: HttpRequest) -> dict[str, str]:
    return {"caller": request.auth}  # type: ignore[attr-defined]


class LedgerOut(Schema):
    id: int
    name: str
    is_deleted: bool


#: The same endpoints from soft_delete_routes: a UUID-keyed BaseModel and an integer-keyed SoftDeleteModel.
routes = Router()
soft_delete_routes(routes, Author, AuthorOut, name="author", path="/authors/", module=__name__, conflict="author")
soft_delete_routes(
    routes, Ledger, LedgerOut, name="ledger", path="/ledgers/", module=__name__, routes=("get", "delete")
)

api = service_api("test-service", ("/api/t", router), ("/api/r", routes))
