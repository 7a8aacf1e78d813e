"""The JSON API of ticket-service. A ticket's requester lives in user-service, its attachments in file-service."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.responses import Status

from shared_core.api import (
    ERROR_RESPONSES,
    IdempotencyKey,
    ListFilters,
    create_once,
    fetch_reference,
    get_or_404,
    soft_delete_routes,
    text,
)
from shared_core.clients import upstream
from ticket_service.models import Ticket
from ticket_service.tasks import notify_requester

router = Router(tags=["tickets"])


class TicketIn(Schema):
    title: text(200)
    description: text(10_000, blank=True) = ""
    requester_id: UUID


class TicketOut(Schema):
    id: UUID
    title: str
    description: str
    requester_id: UUID
    notification: Literal["pending", "delivered", "failed"]
    notified: bool
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TicketFilters(ListFilters):
    requester_id: UUID | None = None


def check_requester(requester_id: UUID) -> None:
    """The requester must be a live user in user-service: 404 naming requester_id if not, 503/504 if it cannot tell."""
    fetch_reference(
        upstream("user-service"), f"/api/users/{requester_id}/", "requester_id", "requester_id names no live user"
    )


@router.post("/tickets/", response={200: TicketOut, 201: TicketOut, **ERROR_RESPONSES})
def create_ticket(
    request: HttpRequest, response: HttpResponse, payload: TicketIn, key: IdempotencyKey = None
) -> Status[Ticket]:
    """Create a ticket; its notification is ``pending`` until the outbox delivers it.

    With an ``Idempotency-Key``, a repeat answers 200 with the first ticket.
    """

    def create(idempotency: dict[str, str | None]) -> Ticket:
        ticket = Ticket.objects.create(**payload.model_dump(), **idempotency)
        notify_requester.enqueue(str(ticket.id))  # in create_once's transaction: stored with the ticket or not at all
        return ticket

    return create_once(response, Ticket, key, payload, create, check=lambda: check_requester(payload.requester_id))


soft_delete_routes(
    router,
    Ticket,
    TicketOut,
    name="ticket",
    path="/tickets/",
    module=__name__,
    filters=TicketFilters,
    routes=("list", "get"),  # delete and restore below also tell file-service, through the outbox
)


@router.delete("/tickets/{ticket_id}/", response={204: None, **ERROR_RESPONSES})
def delete_ticket(request: HttpRequest, ticket_id: UUID) -> Status[None]:
    """Soft-delete the ticket; the outbox then deletes its attachments (ticket_service.signals)."""
    with transaction.atomic():
        get_or_404(Ticket.objects.select_for_update(), ticket_id, "ticket").soft_delete()
    return Status(204, None)


@router.post("/tickets/{ticket_id}/restore/", response={200: TicketOut, **ERROR_RESPONSES})
def restore_ticket(request: HttpRequest, ticket_id: UUID) -> Ticket:
    """Restore the ticket; the outbox then restores the attachments its deletion took."""
    with transaction.atomic():
        ticket = get_or_404(Ticket.all_objects.select_for_update(), ticket_id, "ticket")
        ticket.restore()
    return ticket
