"""The JSON API of communication-service: notifications sent to users about tickets."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from communication_service.models import Notification
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


@router.get("/notifications/", response={200: list[NotificationOut], **ERROR_RESPONSES})
@paginate(KeysetPagination)
def list_notifications(request: HttpRequest, filters: Query[NotificationFilters]) -> Any:
    return visible(Notification, filters)


@router.get("/notifications/{notification_id}/", response={200: NotificationOut, **ERROR_RESPONSES})
def get_notification(request: HttpRequest, notification_id: UUID) -> Notification:
    """A live notification; a deleted one is a 404 here (lists show it with ``?include_deleted=true``)."""
    return get_or_404(Notification.objects.all(), notification_id, "notification")


@router.delete("/notifications/{notification_id}/", response={204: None, **ERROR_RESPONSES})
def delete_notification(request: HttpRequest, notification_id: UUID) -> Status[None]:
    """Soft-delete a live notification; a deleted or unknown one is a 404, as in every service."""
    get_or_404(Notification.objects.all(), notification_id, "notification").soft_delete()
    return Status(204, None)
