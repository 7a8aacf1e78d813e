"""ticket-service's API through Django's test client, with real local servers as its neighbours."""

import json
import uuid

import pytest
from ticket_service.models import Ticket

from shared_core.testing import Reply, undocumented_routes

REQUESTER = str(uuid.uuid4())


def create(api, key=None, **fields):
    body = {"title": "Printer on fire", "requester_id": REQUESTER, **fields}
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/tickets/", body, content_type="application/json", **extra)


def test_create_checks_requester_and_notifies_once_with_a_key(api, neighbours):
    """A ticket for a live requester is stored and its notification carries a stable Idempotency-Key."""
    response = create(api)
    assert response.status_code == 201 and response.json()["notified"] is True
    ticket_id = response.json()["id"]
    assert neighbours.users.hits(f"/api/users/{REQUESTER}/")[0].method == "GET"
    (sent,) = neighbours.comms.hits("/api/notifications/")
    assert sent.headers["Idempotency-Key"] == f"ticket-{ticket_id}-created"
    assert json.loads(sent.body) == {
        "ticket_id": ticket_id,
        "recipient_id": REQUESTER,
        "message": "Ticket created: Printer on fire",
    }


def test_unknown_or_deleted_requester_is_400(api, neighbours):
    """When user-service answers 404 for the requester, the ticket is refused with a 400 naming the field."""
    neighbours.users.script(f"/api/users/{REQUESTER}/", Reply(404, b'{"error": "not_found"}'))
    response = create(api)
    assert response.status_code == 404 and response.json()["field"] == "requester_id"
    assert Ticket.all_objects.count() == 0


def test_user_service_down_is_503_and_slow_is_504(api, neighbours, settings):
    """user-service too slow for the deadline gives 504; unreachable gives 503; both JSON with the request id."""
    settings.HTTP_CLIENT_DEADLINE = 1.0
    neighbours.users.script(f"/api/users/{REQUESTER}/", Reply(delay=5))
    from ticket_service import upstreams

    upstreams.users.cache_clear()
    slow = create(api)
    assert slow.status_code == 504 and slow.json()["error"] == "upstream_timeout" and slow.json()["request_id"]
    settings.USER_SERVICE_URL = "http://127.0.0.1:9"
    upstreams.users.cache_clear()
    down = create(api)
    assert down.status_code == 503 and down.json()["error"] == "upstream_unavailable"
    assert Ticket.all_objects.count() == 0


def test_notification_failure_keeps_the_ticket(api, neighbours):
    """If communication-service fails, the ticket is still stored, marked not notified."""
    neighbours.comms.script("/api/notifications/", Reply(500))
    response = create(api)
    assert response.status_code == 201 and response.json()["notified"] is False


def test_idempotency_key_replays_without_a_second_ticket_or_notification(api, neighbours):
    """A retried POST with the same Idempotency-Key returns the first ticket and notifies once."""
    first = create(api, key="k-1")
    again = create(api, key="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert Ticket.all_objects.count() == 1 and len(neighbours.comms.hits("/api/notifications/")) == 1


def test_delete_and_restore_carry_to_attachments(api, neighbours):
    """Deleting a ticket soft-deletes its files in file-service; restoring sends the deletion's stamp."""
    ticket_id = create(api).json()["id"]
    assert api.delete(f"/api/tickets/{ticket_id}/").status_code == 204
    deleted_at = Ticket.all_objects.get(pk=ticket_id).deleted_at
    assert api.get(f"/api/tickets/{ticket_id}/").status_code == 404
    assert api.post(f"/api/tickets/{ticket_id}/restore/").json()["is_deleted"] is False
    (deleted,) = neighbours.files.hits(f"/api/tickets/{ticket_id}/files/delete/")
    (restored,) = neighbours.files.hits(f"/api/tickets/{ticket_id}/files/restore/")
    assert json.loads(restored.body) == {"since": deleted_at.isoformat()}
    assert deleted.headers["Idempotency-Key"] != restored.headers["Idempotency-Key"]


def test_delete_is_rolled_back_when_file_service_fails(api, neighbours):
    """If file-service cannot take the deletion, the ticket stays live and the caller gets a JSON 5xx."""
    ticket_id = create(api).json()["id"]
    neighbours.files.script(f"/api/tickets/{ticket_id}/files/delete/", Reply(drop=True))
    response = api.delete(f"/api/tickets/{ticket_id}/")
    assert response.status_code == 503 and response.json()["error"] == "upstream_unavailable"
    assert Ticket.objects.filter(pk=ticket_id).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requester_id": REQUESTER}, "title"),
        ({"title": "", "requester_id": REQUESTER}, "title"),
        ({"title": "x"}, "requester_id"),
        ({"title": "x", "requester_id": 12}, "requester_id"),
        ({"title": "x", "requester_id": "zz"}, "requester_id"),
        ({"title": ["x"], "requester_id": REQUESTER}, "title"),
    ],
)
def test_bad_fields_are_400_naming_the_field(api, neighbours, body, field):
    """Each invalid field gets a 400 JSON error naming it, and user-service is never asked."""
    response = api.post("/api/tickets/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert neighbours.users.seen == []


def test_malformed_ids_and_bad_keys(api, neighbours):
    """Malformed ids are 400 naming ticket_id; an overlong Idempotency-Key is 400."""
    assert api.get("/api/tickets/not-a-uuid/").json()["field"] == "ticket_id"
    assert api.post("/api/tickets/nope/restore/").status_code == 400
    assert create(api, key="k" * 200).status_code == 400


def test_every_route_is_in_the_openapi_document(db):
    """Each URL pattern of the service appears in its generated OpenAPI document."""
    assert undocumented_routes() == []


@pytest.mark.parametrize("upstream_reply", [Reply(404, b'{"error": "not_found"}'), Reply(503)])
def test_a_replay_answers_the_first_ticket_whatever_user_service_says_now(api, neighbours, upstream_reply):
    """A resent POST with the same key and body replays the first ticket after its requester is gone or while
    user-service is down; user-service is not asked again."""
    first = create(api, key="k-replay")
    neighbours.users.script(f"/api/users/{REQUESTER}/", upstream_reply)
    asked = len(neighbours.users.hits(f"/api/users/{REQUESTER}/"))
    again = create(api, key="k-replay")
    assert (first.status_code, again.status_code) == (201, 200) and again.json()["id"] == first.json()["id"]
    assert len(neighbours.users.hits(f"/api/users/{REQUESTER}/")) == asked


def test_the_same_key_with_another_body_is_422(api, neighbours):
    """An Idempotency-Key reused with a different ticket body is refused with 422; one ticket exists."""
    create(api, key="k-body")
    reused = create(api, key="k-body", title="Another title")
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert Ticket.all_objects.count() == 1
