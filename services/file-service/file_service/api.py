"""The JSON API of file-service: attachments of tickets, stored by sha256."""

from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import FileResponse, HttpRequest
from ninja import File as FilePart
from ninja import Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate
from ninja.responses import Status

from file_service.models import File
from file_service.storage import blob_path, store
from shared_core.api import (
    ERROR_RESPONSES,
    APIError,
    ErrorOut,
    KeysetPagination,
    ListFilters,
    ServiceToken,
    Timestamp,
    fetch_reference,
    get_or_404,
    visible,
)
from shared_core.clients import HTTPClient

router = Router(tags=["files"])

#: The ticket-wide endpoints: only ticket-service may call them.
TICKET_SERVICE = ServiceToken("ticket-service")


@cache
def tickets() -> HTTPClient:
    return HTTPClient(settings.TICKET_SERVICE_URL)


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


class Deleted(Schema):
    deleted: int
    deleted_at: datetime | None


class RestoreIn(Schema):
    since: Timestamp


class Restored(Schema):
    restored: int


def too_large() -> APIError:
    return APIError(413, "too_large", f"uploads are limited to {settings.FILE_UPLOAD_MAX_BYTES} bytes", field="file")


@router.post("/files/", response={201: FileOut, **ERROR_RESPONSES})
def upload(request: HttpRequest, form: Form[UploadIn], file: FilePart[UploadedFile]) -> Status[File]:
    """Store an attachment of a live ticket (multipart: ``ticket_id`` and ``file``)."""
    if file.size is not None and file.size > settings.FILE_UPLOAD_MAX_BYTES:
        raise too_large()
    fetch_reference(tickets(), f"/api/tickets/{form.ticket_id}/", "ticket_id", "ticket_id names no live ticket")
    sha256, size = store(file)
    name = file.name or "upload"  # Django has already cut a longer name to 255 characters, extension kept
    content_type = (file.content_type or "application/octet-stream")[:255]
    stored = File.objects.create(
        ticket_id=form.ticket_id, name=name, size=size, content_type=content_type, sha256=sha256
    )
    return Status(201, stored)


@router.get("/files/", response={200: list[FileOut], **ERROR_RESPONSES})
@paginate(KeysetPagination)
def list_files(request: HttpRequest, filters: Query[FileFilters]) -> Any:
    return visible(File, filters)


@router.get("/files/{file_id}/", response={200: FileOut, **ERROR_RESPONSES})
def get_file(request: HttpRequest, file_id: UUID) -> File:
    """A live file; a deleted one is a 404 here (lists show it with ``?include_deleted=true``)."""
    return get_or_404(File.objects.all(), file_id, "file")


@router.delete("/files/{file_id}/", response={204: None, **ERROR_RESPONSES})
def delete_file(request: HttpRequest, file_id: UUID) -> Status[None]:
    get_or_404(File.objects.all(), file_id, "file").soft_delete()
    return Status(204, None)


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
    response = FileResponse(path.open("rb"), content_type=file.content_type, as_attachment=True, filename=file.name)
    response["X-Content-SHA256"] = file.sha256
    return response


@router.post("/files/{file_id}/restore/", response={200: FileOut, **ERROR_RESPONSES})
def restore_file(request: HttpRequest, file_id: UUID) -> File:
    file = get_or_404(File.all_objects.all(), file_id, "file")
    file.restore()
    return file


@router.post("/tickets/{ticket_id}/files/delete/", response={200: Deleted, **ERROR_RESPONSES}, auth=TICKET_SERVICE)
def delete_ticket_files(request: HttpRequest, ticket_id: UUID) -> dict[str, Any]:
    """Soft-delete the live files of a ticket (its deletion in ticket-service); repeating it is harmless."""
    (total, _), stamp = File.objects.filter(ticket_id=ticket_id).soft_delete()
    return {"deleted": total, "deleted_at": stamp}


@router.post("/tickets/{ticket_id}/files/restore/", response={200: Restored, **ERROR_RESPONSES}, auth=TICKET_SERVICE)
def restore_ticket_files(request: HttpRequest, ticket_id: UUID, payload: RestoreIn) -> dict[str, int]:
    """Restore a ticket's files deleted at or after ``since`` (the ticket's deletion), not earlier ones."""
    total, _ = File.all_objects.filter(ticket_id=ticket_id, is_deleted=True, deleted_at__gte=payload.since).restore()
    return {"restored": total}
