"""The JSON API of file-service."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from file_service.models import File
from file_service.storage import blob_path, store
from shared_core.api import (
    APIError,
    api_view,
    get_or_404,
    json_body,
    newest,
    parse_uuid,
    visible,
)
from shared_core.middleware import callers


def render_file(file: File) -> dict[str, Any]:
    return {
        "id": file.id,
        "ticket_id": file.ticket_id,
        "name": file.name,
        "size": file.size,
        "content_type": file.content_type,
        "sha256": file.sha256,
        "is_deleted": file.is_deleted,
        "deleted_at": file.deleted_at,
        "created_at": file.created_at,
    }


def too_large() -> APIError:
    return APIError(413, "too_large", f"uploads are limited to {settings.FILE_UPLOAD_MAX_BYTES} bytes")


def upload(request: HttpRequest) -> File:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > settings.FILE_UPLOAD_MAX_BYTES + 64 * 1024:
        raise too_large()  # refused before a byte of the body is read
    if not request.content_type or request.content_type != "multipart/form-data":
        raise APIError(400, "invalid_body", "send multipart/form-data with the fields ticket_id and file")
    try:
        ticket_id = parse_uuid(request.POST.get("ticket_id"), "ticket_id")
        uploaded = request.FILES.get("file")
    except MultiPartParserError:
        raise APIError(400, "invalid_body", "the multipart body is malformed") from None
    if uploaded is None:
        raise APIError(400, "invalid_field", "file is required", field="file")
    if uploaded.size is not None and uploaded.size > settings.FILE_UPLOAD_MAX_BYTES:
        raise too_large()
    sha256, size = store(uploaded)
    name = (uploaded.name or "upload")[:255]
    content_type = (uploaded.content_type or "application/octet-stream")[:255]
    return File.objects.create(ticket_id=ticket_id, name=name, size=size, content_type=content_type, sha256=sha256)


@api_view("GET", "POST")
def files(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return JsonResponse(render_file(upload(request)), status=201)
    return newest(request, visible(File, request), render_file, uuid_filters=["ticket_id"])


@api_view("GET", "DELETE")
def file_detail(request: HttpRequest, file_id: str) -> HttpResponse:
    queryset = visible(File, request) if request.method == "GET" else File.objects.all()
    file = get_or_404(queryset, file_id, "file")
    if request.method == "DELETE":
        file.soft_delete()
        return HttpResponse(status=204)
    return JsonResponse(render_file(file))


@api_view("GET")
def file_content(request: HttpRequest, file_id: str) -> HttpResponse:
    file = get_or_404(File.objects.all(), file_id, "file")
    path = blob_path(file.sha256)
    if not path.exists():
        raise APIError(410, "gone", "the stored bytes are missing")
    response = FileResponse(path.open("rb"), content_type=file.content_type, as_attachment=True, filename=file.name)
    response["X-Content-SHA256"] = file.sha256
    return response


@api_view("POST")
def file_restore(request: HttpRequest, file_id: str) -> HttpResponse:
    file = get_or_404(File.all_objects.all(), file_id, "file")
    file.restore()
    return JsonResponse(render_file(file))


@callers("ticket-service")
@api_view("POST")
def ticket_files_delete(request: HttpRequest, ticket_id: str) -> HttpResponse:
    """Soft-delete the live files of a ticket (its deletion in ticket-service); repeating it is harmless."""
    key = parse_uuid(ticket_id, "ticket_id")
    (total, _), stamp = File.objects.filter(ticket_id=key).soft_delete()
    return JsonResponse({"deleted": total, "deleted_at": stamp})


@callers("ticket-service")
@api_view("POST")
def ticket_files_restore(request: HttpRequest, ticket_id: str) -> HttpResponse:
    """Restore a ticket's files deleted at or after ``since`` (the ticket's deletion), not earlier ones."""
    key = parse_uuid(ticket_id, "ticket_id")
    raw = json_body(request).get("since")
    try:
        since = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise APIError(400, "invalid_field", "since must be an ISO 8601 time with a zone", field="since")
    total, _ = File.all_objects.filter(ticket_id=key, is_deleted=True, deleted_at__gte=since).restore()
    return JsonResponse({"restored": total})
