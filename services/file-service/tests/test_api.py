"""file-service's API through Django's test client, with blobs in a temporary directory."""

import hashlib
import itertools
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

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


#: A ticket's history of deletions and restores, in the order ticket-service made them.
HISTORY = (("delete", 1), ("restore", 1), ("delete", 2), ("restore", 2))


@pytest.mark.parametrize(
    "arrival",
    [order for n in range(1, len(HISTORY) + 1) for order in itertools.permutations(HISTORY[:n])],
    ids=lambda order: ",".join(f"{a[0].upper()}{n}" for a, n in order),
)
def test_every_arrival_order_of_up_to_four_events_ends_as_the_newest_says(api, tickets, arrival):
    """Whatever order deletions and restores arrive in, the files follow the newest event by number so far."""
    own = upload(api, data=b"deleted on its own").json()["id"]
    api.delete(f"/api/files/{own}/")
    files = {upload(api, data=bytes([i])).json()["id"] for i in range(2)}
    seen: list[tuple[str, int]] = []
    for event in arrival:
        deletion(tickets, *event)
        seen.append(event)
        newest = max(seen, key=HISTORY.index)
        assert live_files(api) == (files if newest[0] == "restore" else set()), f"after {seen}"
    assert File.all_objects.get(pk=own).is_deleted


def test_an_upload_after_its_tickets_deletion_arrived_is_404_and_stores_nothing(api, tickets):
    """ticket-service still answers live, but file-service already applied the deletion: 404, no live file."""
    deletion(tickets, "delete", 1)
    answer = upload(api)
    assert answer.status_code == 404 and answer.json()["field"] == "ticket_id"
    assert not File.objects.exists()
    deletion(tickets, "restore", 1)
    assert upload(api).status_code == 201


def multipart(part_headers: bytes, data: bytes = b"bytes", ticket: str = TICKET) -> tuple[bytes, str]:
    boundary = "sc-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="ticket_id"\r\n\r\n{ticket}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        ).encode()
        + part_headers
        + b"\r\n\r\n"
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "declared",
    [b"Content-Type: text/plain\rX-Injected: 1", b"Content-Type: text/plain\nX: 1", b"Content-Type: a\x01b/c"],
)
def test_a_control_character_in_a_parts_type_is_stored_as_octet_stream(api, declared):
    """A part type with CR, LF or a control character: stored as application/octet-stream; downloads work."""
    body, content_type = multipart(declared)
    created = api.post("/api/files/", body, content_type=content_type)
    assert created.status_code == 201, created.json()
    assert created.json()["content_type"] == "application/octet-stream"
    content = api.get(f"/api/files/{created.json()['id']}/content")
    assert content.status_code == 200 and content["Content-Type"] == "application/octet-stream"


def test_a_type_stored_before_the_check_still_downloads(api):
    """A row whose stored type holds a line break (written before types were checked) downloads as octet-stream."""
    file_id = upload(api).json()["id"]
    File.objects.filter(pk=file_id).update(content_type="text/plain\r\nX-Injected: 1")
    content = api.get(f"/api/files/{file_id}/content")
    assert content.status_code == 200 and content["Content-Type"] == "application/octet-stream"


@pytest.fixture
def spool(settings, tmp_path) -> Path:
    """A fresh spool directory; parts over 1 KiB are spooled there, not kept in memory."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    return tmp_path / "spool"


def spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir() if p.name != ".lock") if spool.exists() else []


def test_a_spooled_upload_leaves_no_file_behind(api, spool):
    """A large upload is spooled in FILE_UPLOAD_TEMP_DIR and the spool file is gone when the request ends."""
    created = upload(api, data=b"x" * 100_000)
    assert created.status_code == 201 and created.json()["size"] == 100_000
    assert spool.is_dir() and spooled(spool) == []


def test_an_upload_that_a_failing_view_rejects_leaves_no_spool_file(api, spool, ticket_service):
    """The view refuses the upload after it was spooled (ticket not live): 404, and no spool file is left."""
    ticket_service.script(f"/api/tickets/{TICKET}/", Reply(404, b'{"error": "not_found"}'))
    assert upload(api, data=b"x" * 100_000).status_code == 404
    assert spooled(spool) == []


def test_an_upload_over_the_spool_budget_is_507_and_leaves_nothing(api, spool, settings):
    """An upload bigger than FILE_UPLOAD_SPOOL_BYTES (but within the size limit): 507 JSON, nothing stored."""
    settings.FILE_UPLOAD_SPOOL_BYTES = 64 * 1024
    answer = upload(api, data=b"x" * 100_000)
    assert answer.status_code == 507 and answer.json()["error"] == "insufficient_storage"
    assert spooled(spool) == [] and not File.all_objects.exists()


def test_a_spooled_upload_beside_the_storage_becomes_its_blob(api, spool):
    """Spooled on the storage's file system, the upload is linked in as its blob: the bytes are the upload's,
    the blob is their only name once the request ended, and no spool file or partial copy is left."""
    data = os.urandom(100_000)
    created = upload(api, data=data)
    assert created.status_code == 201 and created.json()["sha256"] == hashlib.sha256(data).hexdigest()
    blob = blob_path(created.json()["sha256"])
    assert blob.read_bytes() == data and blob.stat().st_nlink == 1
    assert spooled(spool) == [] and not list(blob.parent.parent.glob(".upload-*"))
    assert upload(api, data=data).json()["sha256"] == created.json()["sha256"]  # the same bytes again: kept


def test_a_spool_budget_of_zero_is_bounded_by_the_disk_alone(api, spool, settings):
    """FILE_UPLOAD_SPOOL_BYTES=0 sets no budget: a spooled upload is taken while the disk has room."""
    settings.FILE_UPLOAD_SPOOL_BYTES = 0
    assert upload(api, data=b"x" * 100_000).status_code == 201
    assert spooled(spool) == []


def test_an_upload_that_would_eat_into_the_disks_reserve_is_507_and_leaves_nothing(api, spool, settings):
    """An upload that would leave less free room than FILE_UPLOAD_SPOOL_RESERVE_BYTES: 507 JSON, nothing stored."""
    settings.FILE_UPLOAD_SPOOL_BYTES = 0
    spool.mkdir()
    disk = os.statvfs(spool)
    settings.FILE_UPLOAD_SPOOL_RESERVE_BYTES = disk.f_bavail * disk.f_frsize - 50_000
    answer = upload(api, data=b"x" * 100_000)
    assert answer.status_code == 507 and answer.json()["error"] == "insufficient_storage"
    assert "reserve" in answer.json()["detail"]
    assert spooled(spool) == [] and not File.all_objects.exists()


def test_uploads_in_progress_count_against_the_budget(api, spool, settings):
    """Room another upload holds counts: with it taking the budget, the next is 507; once it is gone, 201."""
    settings.FILE_UPLOAD_SPOOL_BYTES = 256 * 1024
    spool.mkdir()
    holder = spool / "in-progress"
    with holder.open("wb") as held:
        os.posix_fallocate(held.fileno(), 0, 200 * 1024)
    assert upload(api, data=b"x" * 100_000).status_code == 507
    holder.unlink()
    assert upload(api, data=b"x" * 100_000).status_code == 201
    assert spooled(spool) == []


def test_a_part_past_the_size_limit_is_413_at_that_byte_and_leaves_nothing(api, spool, settings):
    """A spooled part passing FILE_UPLOAD_MAX_BYTES is refused while it streams: 413, no spool file."""
    settings.FILE_UPLOAD_MAX_BYTES = 50_000
    settings.FILE_UPLOAD_SPOOL_BYTES = 10 * 1024 * 1024
    answer = upload(api, data=b"x" * 200_000)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert spooled(spool) == []


def test_a_multipart_body_cut_short_leaves_no_spool_file(api, spool):
    """A body that ends half-way through a spooled part (a client gone): a 400, and the partial file removed."""
    body, content_type = multipart(b"Content-Type: text/plain", data=b"x" * 100_000)
    answer = api.post("/api/files/", body[: len(body) // 2], content_type=content_type)
    assert answer.status_code == 400
    assert spooled(spool) == []


def test_a_file_of_a_deleted_ticket_cannot_be_restored_on_its_own(api, tickets):
    """Restoring a file whose ticket file-service knows deleted is a 409; the ticket's restore brings it back."""
    file_id = upload(api).json()["id"]
    deletion(tickets, "delete", 1)
    refused = api.post(f"/api/files/{file_id}/restore/")
    assert refused.status_code == 409 and refused.json()["error"] == "ticket_deleted"
    assert File.all_objects.get(pk=file_id).is_deleted
    deletion(tickets, "restore", 1)
    assert live_files(api) == {file_id}


@pytest.fixture
def full_store(settings, tmp_path) -> Iterator[Path]:
    """FILE_STORAGE_DIR on a real 64 KiB tmpfs (root only): a larger blob fills its disk."""
    store = tmp_path / "small"
    store.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(store)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    settings.FILE_STORAGE_DIR = store
    try:
        yield store
    finally:
        subprocess.run(["umount", str(store)], check=True)


def test_a_full_file_store_is_507_and_leaves_no_partial_blob(api, full_store):
    """A blob larger than the store's free room: 507 insufficient_storage, no partial file, no row; a small one fits."""
    refused = upload(api, data=os.urandom(200_000))
    assert refused.status_code == 507 and refused.json()["error"] == "insufficient_storage"
    assert [p for p in full_store.rglob("*") if p.is_file()] == [] and not File.all_objects.exists()
    assert upload(api, data=b"small").status_code == 201
