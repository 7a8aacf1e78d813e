"""communication-service's API through Django's test client, with a real local user-service stand-in."""

import json
import threading
import uuid

import pytest
from communication_service.models import Notification
from django.db import connection

from shared_core import Resilience
from shared_core.testing import Reply, undocumented_routes

RECIPIENT = str(uuid.uuid4())
TICKET = str(uuid.uuid4())


@pytest.fixture
def known_user(user_service):
    user_service.script(f"/api/users/{RECIPIENT}/", Reply(body=json.dumps({"email": "ada@example.com"}).encode()))
    return user_service


def send(api, key=None, **fields):
    body = {"ticket_id": TICKET, "recipient_id": RECIPIENT, "message": "hello", **fields}
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/notifications/", body, content_type="application/json", **extra)


def test_notification_stores_recipient_email(api, known_user):
    """A notification looks its recipient up in user-service and stores the email."""
    response = send(api)
    assert response.status_code == 201 and response.json()["recipient_email"] == "ada@example.com"
    listed = api.get(f"/api/notifications/?ticket_id={TICKET}").json()["results"]
    assert [n["id"] for n in listed] == [response.json()["id"]]


def test_replay_with_same_key_returns_first_result_and_stores_one_row(api, known_user):
    """A second POST with the same Idempotency-Key returns the first notification; one row exists."""
    first = send(api, key="ticket-1-created")
    known_user.script(f"/api/users/{RECIPIENT}/", Reply(503))  # a replay must not need user-service
    again = send(api, key="ticket-1-created")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Notification.all_objects.count() == 1


def test_same_key_with_a_different_body_is_422(api, known_user):
    """An Idempotency-Key reused with another body is refused with 422, never silently replayed."""
    send(api, key="ticket-1-created")
    reused = send(api, key="ticket-1-created", message="different")
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert Notification.all_objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_store_one_row(known_user, settings):
    """Eight simultaneous POSTs with one key store exactly one notification."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("shared-cache in-memory SQLite locks tables without waiting; runs on PostgreSQL")
    from django.test import Client

    # Eight request threads in one process are twice what gunicorn runs; the bulkhead that would turn
    # some away is not what this test is about.
    settings.UPSTREAM_RESILIENCE = {"user-service": Resilience(max_concurrent=None)}
    statuses: list[int] = []

    def post() -> None:
        client = Client(HTTP_AUTHORIZATION=f"Bearer {settings.SERVICE_AUTH_TOKEN}")
        statuses.append(send(client, key="race").status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses).count(201) == 1 and set(statuses) <= {200, 201}
    assert Notification.all_objects.filter(idempotency_key="race").count() == 1


def test_unknown_recipient_is_404_naming_the_field(api, user_service):
    """A recipient user-service does not know is a 404 naming recipient_id."""
    user_service.script(f"/api/users/{RECIPIENT}/", Reply(404))
    response = send(api)
    assert response.status_code == 404 and response.json()["field"] == "recipient_id"


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"ticket_id": "x"}, "ticket_id"), ({"recipient_id": None}, "recipient_id"), ({"message": ""}, "message")],
)
def test_bad_fields_are_400(api, user_service, fields, field):
    """Invalid fields are 400 JSON errors naming the field."""
    response = send(api, **fields)
    assert response.status_code == 400 and response.json()["field"] == field


def test_delete_is_soft(api, known_user):
    """DELETE hides a notification but keeps the row."""
    notification_id = send(api).json()["id"]
    assert api.delete(f"/api/notifications/{notification_id}/").status_code == 204
    assert api.get(f"/api/notifications/{notification_id}/").status_code == 404
    listed = api.get(f"/api/notifications/?ticket_id={TICKET}&include_deleted=true").json()["results"]
    assert [(n["id"], n["is_deleted"]) for n in listed] == [(notification_id, True)]


def test_every_route_is_in_the_openapi_document(db):
    """Each URL pattern of the service appears in its generated OpenAPI document."""
    assert undocumented_routes() == []


def test_deleting_a_deleted_notification_is_404_even_with_include_deleted(api, known_user):
    """DELETE of a deleted notification is 404 with or without ?include_deleted=1, as in the other services."""
    path = f"/api/notifications/{send(api).json()['id']}/"
    assert api.delete(path).status_code == 204
    assert api.delete(path).status_code == 404
    assert api.delete(path + "?include_deleted=1").status_code == 404
