"""The JSON API of ticket-service."""

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from shared_core.api import (
    api_view,
    create_once,
    fetch_or_400,
    get_or_404,
    idempotency_key,
    json_body,
    newest,
    optional_str,
    parse_uuid,
    required_str,
    visible,
)
from shared_core.clients import HTTPClientError
from ticket_service.models import Ticket
from ticket_service.upstreams import communications, users

logger = logging.getLogger(__name__)


def render_ticket(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "title": ticket.title,
        "description": ticket.description,
        "requester_id": ticket.requester_id,
        "notified": ticket.notified,
        "is_deleted": ticket.is_deleted,
        "deleted_at": ticket.deleted_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def check_requester(requester_id: object) -> None:
    """The requester must be a live user in user-service: 400 if not, 503/504 if it cannot tell."""
    fetch_or_400(users(), f"/api/users/{requester_id}/", "requester_id", "requester_id names no live user")


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


@api_view("GET", "POST")
def tickets(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return newest(request, visible(Ticket, request), render_ticket, uuid_filters=["requester_id"])

    data = json_body(request)
    title = required_str(data, "title", 200)
    description = optional_str(data, "description", 10_000)
    requester_id = parse_uuid(data.get("requester_id"), "requester_id")
    key = idempotency_key(request)
    check_requester(requester_id)

    def create() -> Ticket:
        return Ticket.objects.create(
            title=title, description=description, requester_id=requester_id, idempotency_key=key
        )

    return create_once(Ticket, key, create, render_ticket, after_create=notify_requester)


@api_view("GET", "DELETE")
def ticket_detail(request: HttpRequest, ticket_id: str) -> HttpResponse:
    if request.method == "DELETE":
        with transaction.atomic():
            ticket = get_or_404(Ticket.objects.select_for_update(), ticket_id, "ticket")
            ticket.soft_delete()  # its attachments follow (ticket_service.signals) or nothing changes
        return HttpResponse(status=204)
    queryset = visible(Ticket, request)
    return JsonResponse(render_ticket(get_or_404(queryset, ticket_id, "ticket")))


@api_view("POST")
def ticket_restore(request: HttpRequest, ticket_id: str) -> HttpResponse:
    with transaction.atomic():
        ticket = get_or_404(Ticket.all_objects.select_for_update(), ticket_id, "ticket")
        ticket.restore()
    return JsonResponse(render_ticket(ticket))
