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


def test_create_answers_pending_and_the_outbox_delivers_the_notification_once(api, neighbours, outbox):
    """A new ticket is 201 with its notification pending; the outbox sends it once, with a stable key."""
    response = create(api)
    assert response.status_code == 201
    assert (response.json()["notification"], response.json()["notified"]) == ("pending", False)
    ticket_id = response.json()["id"]
    assert neighbours.users.hits(f"/api/users/{REQUESTER}/")[0].method == "GET"
    assert neighbours.comms.hits("/api/notifications/") == []
    assert outbox() == 1
    (sent,) = neighbours.comms.hits("/api/notifications/")
    assert sent.headers["Idempotency-Key"] == f"ticket-{ticket_id}-created"
    assert json.loads(sent.body) == {
        "ticket_id": ticket_id,
        "recipient_id": REQUESTER,
        "message": "Ticket created: Printer on fire",
    }
    shown = api.get(f"/api/tickets/{ticket_id}/").json()
    assert (shown["notification"], shown["notified"]) == ("delivered", True)


def test_unknown_or_deleted_requester_is_404_naming_the_field(api, neighbours):
    """When user-service answers 404 for the requester, the ticket is refused with a 404 naming requester_id."""
    neighbours.users.script(f"/api/users/{REQUESTER}/", Reply(404, b'{"error": "not_found"}'))
    response = create(api)
    assert response.status_code == 404 and response.json()["field"] == "requester_id"
    assert Ticket.all_objects.count() == 0


def test_user_service_down_is_503_and_slow_is_504(api, neighbours, settings):
    """user-service too slow for the deadline gives 504; unreachable gives 503; both JSON with the request id."""
    settings.HTTP_CLIENT_DEADLINE = 1.0
    neighbours.users.script(f"/api/users/{REQUESTER}/", Reply(delay=5))
    slow = create(api)
    assert slow.status_code == 504 and slow.json()["error"] == "upstream_timeout" and slow.json()["request_id"]
    settings.UPSTREAMS = {**settings.UPSTREAMS, "user-service": "http://127.0.0.1:9"}
    down = create(api)
    assert down.status_code == 503 and down.json()["error"] == "upstream_unavailable"
    assert Ticket.all_objects.count() == 0


def test_a_failing_notification_is_retried_with_the_same_key_until_delivered(api, neighbours, outbox):
    """communication-service failing twice leaves the ticket pending; the third attempt delivers it, same key."""
    neighbours.comms.script("/api/notifications/", Reply(500), Reply(503), Reply(201, b"{}"))
    ticket_id = create(api).json()["id"]
    outbox()
    attempts = neighbours.comms.hits("/api/notifications/")
    assert len({hit.headers["Idempotency-Key"] for hit in attempts}) == 1
    assert len(attempts) >= 3 and api.get(f"/api/tickets/{ticket_id}/").json()["notification"] == "delivered"


def test_a_refused_notification_fails_at_once_and_says_so(api, neighbours, outbox):
    """A 404 from communication-service is not retried: the task is FAILED and the ticket says failed."""
    neighbours.comms.script("/api/notifications/", Reply(404, b'{"error": "not_found"}'))
    ticket_id = create(api).json()["id"]
    outbox()
    assert len(neighbours.comms.hits("/api/notifications/")) == 1
    assert api.get(f"/api/tickets/{ticket_id}/").json()["notification"] == "failed"


def test_idempotency_key_replays_without_a_second_ticket_or_notification(api, neighbours, outbox):
    """A retried POST with the same Idempotency-Key returns the first ticket and notifies once."""
    first = create(api, key="k-1")
    again = create(api, key="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert outbox() == 1
    assert Ticket.all_objects.count() == 1 and len(neighbours.comms.hits("/api/notifications/")) == 1


def test_delete_and_restore_answer_at_once_and_the_outbox_carries_them_to_attachments(api, neighbours, outbox):
    """DELETE and restore call no one; the outbox then sends deletion 1 to file-service, then its restore."""
    ticket_id = create(api).json()["id"]
    outbox()
    neighbours.files.script(f"/api/tickets/{ticket_id}/files/delete/", Reply(drop=True))
    assert api.delete(f"/api/tickets/{ticket_id}/").status_code == 204
    assert api.get(f"/api/tickets/{ticket_id}/").status_code == 404
    assert api.post(f"/api/tickets/{ticket_id}/restore/").json()["is_deleted"] is False
    assert neighbours.files.hits(f"/api/tickets/{ticket_id}/files/delete/") == []
    neighbours.files.script(f"/api/tickets/{ticket_id}/files/delete/", Reply(200, b"{}"))
    assert outbox() == 2
    (deleted,) = neighbours.files.hits(f"/api/tickets/{ticket_id}/files/delete/")
    (restored,) = neighbours.files.hits(f"/api/tickets/{ticket_id}/files/restore/")
    assert json.loads(deleted.body) == json.loads(restored.body) == {"deletion": 1}
    assert deleted.headers["Idempotency-Key"] == f"ticket-{ticket_id}-deletion-1-delete"
    assert restored.headers["Idempotency-Key"] == f"ticket-{ticket_id}-deletion-1-restore"


def test_each_deletion_of_a_ticket_has_the_next_number(api, neighbours, outbox):
    """Deleting, restoring and deleting again sends deletion 1 then deletion 2; a bulk delete enqueues per ticket."""
    ticket_id = create(api).json()["id"]
    other_id = create(api).json()["id"]
    api.delete(f"/api/tickets/{ticket_id}/")
    api.post(f"/api/tickets/{ticket_id}/restore/")
    Ticket.objects.filter(pk__in=[ticket_id, other_id]).delete()
    outbox()
    sent = [json.loads(hit.body) for hit in neighbours.files.hits(f"/api/tickets/{ticket_id}/files/delete/")]
    assert sent == [{"deletion": 1}, {"deletion": 2}]
    (other,) = neighbours.files.hits(f"/api/tickets/{other_id}/files/delete/")
    assert json.loads(other.body) == {"deletion": 1}


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
