"""The JSON API of communication-service: notifications sent to users about tickets."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.responses import Status

from communication_service.models import Notification
from shared_core.api import (
    ERROR_RESPONSES,
    IdempotencyKey,
    ListFilters,
    create_once,
    fetch_reference,
    soft_delete_routes,
    text,
)
from shared_core.clients import upstream

router = Router(tags=["notifications"])


class NotificationIn(Schema):
    ticket_id: UUID
    recipient_id: UUID
    message: text(2000)


class NotificationOut(Schema):
    id: UUID
    ticket_id: UUID
    recipient_id: UUID
    recipient_email: str
    message: str
    is_deleted: bool
    created_at: datetime


class NotificationFilters(ListFilters):
    ticket_id: UUID | None = None


@router.post("/notifications/", response={200: NotificationOut, 201: NotificationOut, **ERROR_RESPONSES})
def create_notification(
    request: HttpRequest, response: HttpResponse, payload: NotificationIn, key: IdempotencyKey = None
) -> Status[Notification]:
    """Notify a user. With an ``Idempotency-Key``, a repeat answers 200 with the first notification."""
    recipient: dict[str, Any] = {}

    def look_up_recipient() -> None:
        detail = "recipient_id names no live user"
        recipient.update(
            fetch_reference(upstream("user-service"), f"/api/users/{payload.recipient_id}/", "recipient_id", detail)
        )

    def create(idempotency: dict[str, str | None]) -> Notification:
        return Notification.objects.create(**payload.model_dump(), recipient_email=recipient["email"], **idempotency)

    return create_once(response, Notification, key, payload, create, check=look_up_recipient)


soft_delete_routes(
    router,
    Notification,
    NotificationOut,
    name="notification",
    path="/notifications/",
    module=__name__,
    filters=NotificationFilters,
    routes=("list", "get", "delete"),  # a notification is never restored
)
