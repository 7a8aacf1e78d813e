"""The JSON API of communication-service."""

from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from communication_service.models import Notification
from shared_core.api import (
    api_view,
    create_once,
    fetch_or_400,
    get_or_404,
    idempotency_key,
    json_body,
    newest,
    parse_uuid,
    replayed,
    required_str,
    visible,
)
from shared_core.clients import HTTPClient


@cache
def users() -> HTTPClient:
    return HTTPClient(settings.USER_SERVICE_URL)


def render_notification(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "ticket_id": notification.ticket_id,
        "recipient_id": notification.recipient_id,
        "recipient_email": notification.recipient_email,
        "message": notification.message,
        "is_deleted": notification.is_deleted,
        "created_at": notification.created_at,
    }


def recipient_email(recipient_id: object) -> str:
    user = fetch_or_400(users(), f"/api/users/{recipient_id}/", "recipient_id", "recipient_id names no live user")
    return str(user["email"])


@api_view("GET", "POST")
def notifications(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return newest(request, visible(Notification, request), render_notification, uuid_filters=["ticket_id"])

    data = json_body(request)
    ticket_id = parse_uuid(data.get("ticket_id"), "ticket_id")
    recipient_id = parse_uuid(data.get("recipient_id"), "recipient_id")
    message = required_str(data, "message", 2000)
    key = idempotency_key(request)
    replay = replayed(Notification, key, render_notification)
    if replay is not None:
        return replay
    email = recipient_email(recipient_id)

    def create() -> Notification:
        return Notification.objects.create(
            ticket_id=ticket_id, recipient_id=recipient_id, recipient_email=email, message=message, idempotency_key=key
        )

    return create_once(Notification, key, create, render_notification)


@api_view("GET", "DELETE")
def notification_detail(request: HttpRequest, notification_id: str) -> HttpResponse:
    queryset = visible(Notification, request)
    notification = get_or_404(queryset, notification_id, "notification")
    if request.method == "DELETE":
        notification.soft_delete()
        return HttpResponse(status=204)
    return JsonResponse(render_notification(notification))
