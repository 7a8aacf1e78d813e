"""The JSON API of ticket-service. A ticket's requester lives in user-service, its attachments in file-service."""

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from shared_core.api import (
    ERROR_RESPONSES,
    IdempotencyKey,
    KeysetPagination,
    ListFilters,
    create_once,
    fetch_reference,
    get_or_404,
    text,
    visible,
)
from shared_core.clients import HTTPClientError
from ticket_service.models import Ticket
from ticket_service.upstreams import communications, users

logger = logging.getLogger(__name__)
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
    notified: bool
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TicketFilters(ListFilters):
    requester_id: UUID | None = None


def check_requester(requester_id: UUID) -> None:
    """The requester must be a live user in user-service: 404 naming requester_id if not, 503/504 if it cannot tell."""
    fetch_reference(users(), f"/api/users/{requester_id}/", "requester_id", "requester_id names no live user")


def notify_requester(ticket: Ticket) -> None:
    """Ask communication-service to notify the requester; a retry can never notify twice."""
    payload = {
        "ticket_id": str(ticket.id),
        "recipient_id": str(ticket.requester_id),
        "message": f"Ticket created: {ticket.title}",
    }
    try:
        communications().post_json("/api/notifications/", payload, idempotency_key=f"ticket-{ticket.id}-created")
    except HTTPClientError as exc:
        logger.warning("ticket %s created but its notification failed: %s", ticket.id, exc)
        return
    Ticket.objects.filter(pk=ticket.pk).update(notified=True)
    ticket.notified = True


@router.post("/tickets/", response={200: TicketOut, 201: TicketOut, **ERROR_RESPONSES})
def create_ticket(
    request: HttpRequest, response: HttpResponse, payload: TicketIn, key: IdempotencyKey = None
) -> Status[Ticket]:
    """Create a ticket and notify its requester. With an ``Idempotency-Key``, a repeat answers 200 with the first."""

    def create(fingerprint: str) -> Ticket:
        return Ticket.objects.create(**payload.model_dump(), idempotency_key=key, idempotency_fingerprint=fingerprint)

    return create_once(
        response,
        Ticket,
        key,
        payload,
        create,
        check=lambda: check_requester(payload.requester_id),
        after_create=notify_requester,
    )


@router.get("/tickets/", response={200: list[TicketOut], **ERROR_RESPONSES})
@paginate(KeysetPagination)
def list_tickets(request: HttpRequest, filters: Query[TicketFilters]) -> Any:
    return visible(Ticket, filters)


@router.get("/tickets/{ticket_id}/", response={200: TicketOut, **ERROR_RESPONSES})
def get_ticket(request: HttpRequest, ticket_id: UUID) -> Ticket:
    """A live ticket; a deleted one is a 404 here (lists show it with ``?include_deleted=true``)."""
    return get_or_404(Ticket.objects.all(), ticket_id, "ticket")


@router.delete("/tickets/{ticket_id}/", response={204: None, **ERROR_RESPONSES})
def delete_ticket(request: HttpRequest, ticket_id: UUID) -> Status[None]:
    """Soft-delete the ticket; its attachments follow (ticket_service.signals) or nothing changes."""
    with transaction.atomic():
        get_or_404(Ticket.objects.select_for_update(), ticket_id, "ticket").soft_delete()
    return Status(204, None)


@router.post("/tickets/{ticket_id}/restore/", response={200: TicketOut, **ERROR_RESPONSES})
def restore_ticket(request: HttpRequest, ticket_id: UUID) -> Ticket:
    """Restore the ticket and the attachments its deletion took."""
    with transaction.atomic():
        ticket = get_or_404(Ticket.all_objects.select_for_update(), ticket_id, "ticket")
        ticket.restore()
    return ticket
