"""The JSON API of file-service: attachments of tickets, stored by sha256."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpRequest
from ninja import File as FilePart, Form, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status
from pydantic import Field

from file_service import deletions
from file_service.models import File
from file_service.storage import StoreFull, blob_path, store
from shared_core.api import (
    ERROR_RESPONSES,
    APIError,
    ErrorOut,
    ListFilters,
    ServiceToken,
    fetch_reference,
    get_or_404,
    soft_delete_routes,
)
from shared_core.clients import upstream

router = Router(tags=["files"])

#: The ticket-wide endpoints: only ticket-service may call them.
TICKET_SERVICE = ServiceToken("ticket-service")


class FileOut(Schema):
    id: UUID
    ticket_id: UUID
    name: str
    size: int
    content_type: str
    sha256: str
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime


class FileFilters(ListFilters):
    ticket_id: UUID | None = None


class UploadIn(Schema):
    ticket_id: UUID


class DeletionIn(Schema):
    deletion: Annotated[int, Field(ge=1, le=2**31 - 1, description="The number of the ticket's deletion")]


class DeletionOut(Schema):
    deletion: int
    state: Literal["deleted", "restored", "superseded"]
    files: int = Field(description="Files this deletion holds deleted now")


def too_large() -> APIError:
    return APIError(413, "too_large", f"uploads are limited to {settings.FILE_UPLOAD_MAX_BYTES} bytes", field="file")


#: What a stored type must look like: ``type/subtype`` and parameters, printable ASCII (RFC 9110's media-type).
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*;[ -~]*)?")
#: The type of bytes whose part declared none, or one that is not a media type.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def media_type(declared: str | None) -> str:
    """``declared`` if it is a media type of at most 255 characters, else ``DEFAULT_CONTENT_TYPE``.

    A part's type is sent back as a header on every download: a CR, LF or any other control character in it
    would make each download fail, so such a type is never stored.
    """
    if declared and len(declared) <= 255 and _MEDIA_TYPE.fullmatch(declared):
        return declared
    return DEFAULT_CONTENT_TYPE


@router.post("/files/", response={201: FileOut, **ERROR_RESPONSES})
def upload(request: HttpRequest, form: Form[UploadIn], file: FilePart[UploadedFile]) -> Status[File]:
    """Store an attachment of a live ticket (multipart: ``ticket_id`` and ``file``).

    The ticket is checked twice: live in ticket-service first, then, in the transaction that stores the
    file, not deleted as far as file-service was told (its deletion record is locked meanwhile), so an upload
    racing the ticket's deletion is either refused or taken by that deletion, never left live.
    """
    if file.size is not None and file.size > settings.FILE_UPLOAD_MAX_BYTES:
        raise too_large()
    missing = "ticket_id names no live ticket"
    fetch_reference(upstream("ticket-service"), f"/api/tickets/{form.ticket_id}/", "ticket_id", missing)
    try:
        sha256, size = store(file)
    except StoreFull as exc:
        raise APIError(507, "insufficient_storage", f"{exc}; retry later") from None
    name = file.name or "upload"  # Django has already cut a longer name to 255 characters, extension kept
    with transaction.atomic():
        if deletions.ticket_is_deleted(form.ticket_id):
            raise APIError(404, "not_found", missing, field="ticket_id")
        stored = File.objects.create(
            ticket_id=form.ticket_id, name=name, size=size, content_type=media_type(file.content_type), sha256=sha256
        )
    return Status(201, stored)


soft_delete_routes(
    router,
    File,
    FileOut,
    name="file",
    path="/files/",
    module=__name__,
    filters=FileFilters,
    routes=("list", "get", "delete"),  # a restore below refuses a file whose ticket is deleted
)


_BYTES = {"description": "The stored bytes", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


@router.get(
    "/files/{file_id}/content", response={410: ErrorOut, **ERROR_RESPONSES}, openapi_extra={"responses": {200: _BYTES}}
)
def file_content(request: HttpRequest, file_id: UUID) -> FileResponse:
    """The stored bytes, as an attachment with the file's name and type, and ``X-Content-SHA256``."""
    file = get_or_404(File.objects.all(), file_id, "file")
    path = blob_path(file.sha256)
    if not path.exists():
        raise APIError(410, "gone", "the stored bytes are missing")
    content_type = media_type(file.content_type)  # rows stored before types were checked, too
    response = FileResponse(path.open("rb"), content_type=content_type, as_attachment=True, filename=file.name)
    response["X-Content-SHA256"] = file.sha256
    return response


@router.post("/files/{file_id}/restore/", response={200: FileOut, **ERROR_RESPONSES})
def restore_file(request: HttpRequest, file_id: UUID) -> File:
    """Restore a deleted file; 409 while its ticket is deleted (a restore of the ticket brings it back)."""
    file = get_or_404(File.all_objects.all(), file_id, "file")
    with transaction.atomic():
        if file.is_deleted and deletions.ticket_is_deleted(file.ticket_id):
            raise APIError(409, "ticket_deleted", "the file's ticket is deleted: restore the ticket instead")
        if file.restore()[0]:
            File.all_objects.filter(pk=file.pk).update(ticket_deletion=None)
    return file


@router.post("/tickets/{ticket_id}/files/delete/", response={200: DeletionOut, **ERROR_RESPONSES}, auth=TICKET_SERVICE)
def delete_ticket_files(request: HttpRequest, ticket_id: UUID, payload: DeletionIn) -> dict[str, Any]:
    """Deletion ``n`` of the ticket takes its live files, and those an older deletion of it still holds.

    Idempotent, and safe out of order: a repeat, or a deletion older than one already seen, or one
    whose restore came first, changes nothing. The answer is the deletion's state.
    """
    return deletions.delete(ticket_id, payload.deletion)


@router.post("/tickets/{ticket_id}/files/restore/", response={200: DeletionOut, **ERROR_RESPONSES}, auth=TICKET_SERVICE)
def restore_ticket_files(request: HttpRequest, ticket_id: UUID, payload: DeletionIn) -> dict[str, Any]:
    """Undo deletion ``n`` of the ticket: the files its deletions hold come back, not those deleted on their own.

    Idempotent, and safe out of order: the newest event by number decides, whatever order they arrive in.
    Restore ``n`` after deletion ``n`` means the ticket is live, so every file that deletion ``n`` or an
    older one still holds comes back (an older deletion whose restore was overtaken, say D1, R2, R1, D2).
    A restore that arrives before its deletion marks it undone, so the deletion changes nothing when it
    comes; a restore of a superseded deletion changes nothing.
    """
    return deletions.restore(ticket_id, payload.deletion)
