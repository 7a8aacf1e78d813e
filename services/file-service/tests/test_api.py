"""file-service's API through Django's test client, with blobs in a temporary directory."""

import hashlib
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from file_service.models import File
from file_service.storage import blob_path

from shared_core.testing import Reply, undocumented_routes

TICKET = str(uuid.uuid4())


def upload(api, data=b"hello bytes", name="hello.txt", ticket=TICKET):
    document = SimpleUploadedFile(name, data, content_type="text/plain")
    return api.post("/api/files/", {"ticket_id": ticket, "file": document})


def test_upload_records_metadata_and_streams_bytes_back(api):
    """An upload stores name, size, type and sha256; content returns the same bytes."""
    created = upload(api)
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["size"], body["content_type"]) == ("hello.txt", 11, "text/plain")
    assert body["sha256"] == hashlib.sha256(b"hello bytes").hexdigest()
    content = api.get(f"/api/files/{body['id']}/content")
    assert content.status_code == 200 and b"".join(content.streaming_content) == b"hello bytes"
    assert [f["id"] for f in api.get(f"/api/files/?ticket_id={TICKET}").json()["results"]] == [body["id"]]


def test_over_the_limit_is_413(api, settings):
    """An upload larger than FILE_UPLOAD_MAX_BYTES gets a 413 JSON error and stores nothing."""
    settings.FILE_UPLOAD_MAX_BYTES = 10
    response = upload(api, data=b"x" * 11)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert File.all_objects.count() == 0


def test_soft_delete_never_removes_bytes(api):
    """Deleting a file hides it and its content, but its bytes stay on disk and come back on restore."""
    body = upload(api).json()
    assert api.delete(f"/api/files/{body['id']}/").status_code == 204
    assert api.get(f"/api/files/{body['id']}/content").status_code == 404
    assert blob_path(body["sha256"]).read_bytes() == b"hello bytes"
    assert api.post(f"/api/files/{body['id']}/restore/").json()["is_deleted"] is False
    assert api.get(f"/api/files/{body['id']}/content").status_code == 200


def deletion(tickets, action, number, ticket=TICKET):
    path = f"/api/tickets/{ticket}/files/{action}/"
    return tickets.post(path, {"deletion": number}, content_type="application/json").json()


def live_files(api, ticket=TICKET):
    return {f["id"] for f in api.get(f"/api/files/?ticket_id={ticket}").json()["results"]}


def test_ticket_delete_and_restore_bring_back_exactly_its_files(api, tickets):
    """Deletion 1 takes the ticket's live files; its restore brings back those, not one deleted on its own."""
    early, kept_a, kept_b = (upload(api, data=bytes([i])).json()["id"] for i in range(3))
    api.delete(f"/api/files/{early}/")
    other_ticket = upload(api, ticket=str(uuid.uuid4())).json()["id"]
    assert deletion(tickets, "delete", 1) == {"deletion": 1, "state": "deleted", "files": 2}
    assert deletion(tickets, "delete", 1) == {"deletion": 1, "state": "deleted", "files": 2}
    assert deletion(tickets, "restore", 1) == {"deletion": 1, "state": "restored", "files": 0}
    assert deletion(tickets, "restore", 1) == {"deletion": 1, "state": "restored", "files": 0}
    assert live_files(api) == {kept_a, kept_b} and File.objects.filter(pk=other_ticket).exists()
    assert File.all_objects.get(pk=early).ticket_deletion is None


def test_a_restore_delivered_before_its_deletion_leaves_the_files_live(api, tickets):
    """Out of order: restore 1 then delete 1 leaves every file live, as the ticket is."""
    files = {upload(api, data=bytes([i])).json()["id"] for i in range(2)}
    assert deletion(tickets, "restore", 1)["state"] == "restored"
    assert deletion(tickets, "delete", 1) == {"deletion": 1, "state": "restored", "files": 0}
    assert live_files(api) == files


def test_a_newer_deletion_supersedes_an_older_ones_late_restore(api, tickets):
    """Delete 1, delete 2, then a late restore 1: the files stay deleted, held by deletion 2, until restore 2."""
    files = {upload(api, data=bytes([i])).json()["id"] for i in range(2)}
    deletion(tickets, "delete", 1)
    assert deletion(tickets, "delete", 2) == {"deletion": 2, "state": "deleted", "files": 2}
    assert deletion(tickets, "restore", 1) == {"deletion": 1, "state": "superseded", "files": 0}
    assert deletion(tickets, "delete", 1)["state"] == "superseded" and live_files(api) == set()
    assert deletion(tickets, "restore", 2)["state"] == "restored" and live_files(api) == files


@pytest.mark.parametrize("number", [0, -1, 2**31, "one", None])
def test_a_bad_deletion_number_is_400(tickets, number):
    """A deletion number that is not a whole number from 1 to 2**31-1 is a 400 naming deletion."""
    response = tickets.post(
        f"/api/tickets/{TICKET}/files/delete/", {"deletion": number}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["field"] == "deletion"


def test_ticket_wide_endpoints_refuse_other_callers(api):
    """Only ticket-service may delete or restore a ticket's files: the operator gets 403 JSON and nothing changes."""
    upload(api)
    for action in ("delete", "restore"):
        refused = api.post(f"/api/tickets/{TICKET}/files/{action}/", {}, content_type="application/json")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert File.objects.filter(ticket_id=TICKET).count() == 1


def test_bad_uploads_are_400(api):
    """A missing file, a bad ticket id and a non-multipart body are 400s naming the problem."""
    no_file = api.post("/api/files/", {"ticket_id": TICKET})
    assert no_file.status_code == 400 and no_file.json()["field"] == "file"
    bad_ticket = upload(api, ticket="nope")
    assert bad_ticket.status_code == 400 and bad_ticket.json()["field"] == "ticket_id"
    not_multipart = api.post("/api/files/", {"ticket_id": TICKET}, content_type="application/json")
    assert not_multipart.status_code == 400 and not_multipart.json()["field"] == "ticket_id"
    assert api.get("/api/files/%20/").json()["field"] == "file_id"


def test_every_route_is_in_the_openapi_document(db):
    """Each URL pattern of the service appears in its generated OpenAPI document."""
    assert undocumented_routes() == []


def test_an_upload_for_a_ticket_that_is_not_live_is_404(api, ticket_service):
    """When ticket-service answers 404 (unknown or deleted ticket), the upload is refused and nothing is stored."""
    ticket_service.script(f"/api/tickets/{TICKET}/", Reply(404, b'{"error": "not_found"}'))
    refused = upload(api)
    assert refused.status_code == 404 and refused.json()["field"] == "ticket_id"
    assert File.all_objects.count() == 0


def test_a_text_field_over_a_mebibyte_is_413(api):
    """A multipart text field over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, not a 400 bad_request."""
    big = "x" * (1024 * 1024 + 1)
    response = api.post("/api/files/", {"ticket_id": TICKET, "note": big, "file": SimpleUploadedFile("a", b"a")})
    assert response.status_code == 413 and response.json()["error"] == "too_large"


def test_a_thousand_character_file_name_is_kept_cut_to_255(api):
    """A 1,000-character file name is accepted and stored cut to 255 characters (extension kept), not refused."""
    boundary, name = "b0undary", "n" * 996 + ".txt"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="ticket_id"\r\n\r\n{TICKET}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\nbytes\r\n--{boundary}--\r\n"
    )
    response = api.generic("POST", "/api/files/", body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "n" * 251 + ".txt"
