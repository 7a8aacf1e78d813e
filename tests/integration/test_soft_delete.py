"""Soft delete across containers: hidden from the API, kept in the database and on disk, restorable."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from tests.integration.conftest import eventually

pytestmark = pytest.mark.docker

#: Generous bound for ticket-service's outbox to carry a deletion or restore to file-service.
OUTBOX_WITHIN = 60.0


def live_files(stack, ticket_id: str) -> list[str]:
    listed = stack.call("GET", "file-service", f"/api/files/?ticket_id={ticket_id}").json()["results"]
    return sorted(f["id"] for f in listed)


def test_deleted_user_is_hidden_kept_restorable_and_refused_as_requester(stack):
    """A deleted user vanishes from the API, stays in the table, is refused as a requester, and comes back."""
    user = stack.call("POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "D"})
    user_id = user.json()["id"]
    assert stack.call("DELETE", "user-service", f"/api/users/{user_id}/").status_code == 204
    assert stack.call("GET", "user-service", f"/api/users/{user_id}/").status_code == 404
    listed = stack.call("GET", "user-service", "/api/users/?include_deleted=1&limit=1000").json()["results"]
    assert [u["is_deleted"] for u in listed if u["id"] == user_id] == [True]
    in_db = stack.manage(
        "user-service",
        f"from user_service.models import User; u = User.all_objects.get(pk='{user_id}'); print(u.is_deleted)",
    )
    assert in_db == "True"
    refused = stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "t", "requester_id": user_id})
    assert refused.status_code == 404 and refused.json()["field"] == "requester_id"
    assert stack.call("POST", "user-service", f"/api/users/{user_id}/restore/").json()["is_deleted"] is False
    accepted = stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "t", "requester_id": user_id})
    assert accepted.status_code == 201


def test_ticket_delete_takes_exactly_its_attachments_and_keeps_their_bytes(stack):
    """Deleting a ticket soft-deletes its files in file-service (through the outbox), bytes stay, and restore
    brings back only those."""
    user_id = stack.call(
        "POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "F"}
    ).json()["id"]
    ticket_id = stack.call(
        "POST", "ticket-service", "/api/tickets/", json={"title": "t", "requester_id": user_id}
    ).json()["id"]
    blobs = [f"attachment {i} {uuid.uuid4()}".encode() for i in range(3)]
    ids = []
    for i, blob in enumerate(blobs):
        response = stack.call(
            "POST", "file-service", "/api/files/", data={"ticket_id": ticket_id}, files={"file": (f"f{i}.txt", blob)}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    assert stack.call("DELETE", "file-service", f"/api/files/{ids[0]}/").status_code == 204

    assert stack.call("DELETE", "ticket-service", f"/api/tickets/{ticket_id}/").status_code == 204
    eventually(lambda: live_files(stack, ticket_id) == [], OUTBOX_WITHIN, "the outbox deleted the attachments")
    every = stack.call("GET", "file-service", f"/api/files/?ticket_id={ticket_id}&include_deleted=1").json()["results"]
    assert sorted(f["id"] for f in every) == sorted(ids) and all(f["is_deleted"] for f in every)
    for blob in blobs:
        digest = hashlib.sha256(blob).hexdigest()
        assert (
            stack.container("file-service").exec_run(["test", "-f", f"/data/files/{digest[:2]}/{digest}"]).exit_code
            == 0
        )

    assert stack.call("POST", "ticket-service", f"/api/tickets/{ticket_id}/restore/").status_code == 200
    expected = sorted(ids[1:])
    eventually(lambda: live_files(stack, ticket_id) == expected, OUTBOX_WITHIN, "the outbox restored exactly those")
    content = stack.call("GET", "file-service", f"/api/files/{ids[1]}/content")
    assert content.status_code == 200 and content.content == blobs[1]


def test_services_run_on_the_database_asked_for(stack):
    """With DB=postgres every service talks to PostgreSQL; otherwise to SQLite."""
    wanted = "postgresql" if os.environ.get("DB") == "postgres" else "sqlite"
    for service in ("user-service", "ticket-service", "communication-service", "file-service"):
        vendor = stack.manage(service, "from django.db import connection; print(connection.vendor)")
        assert vendor == wanted, service
