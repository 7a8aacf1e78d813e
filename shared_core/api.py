"""What every service's JSON API shares: errors as JSON, input parsing, health views.

Views decorated with ``api_view`` never answer with a traceback or an HTML page:

- ``APIError(status, error, detail)`` becomes that status with a JSON body;
- a non-2xx upstream (``HTTPStatusError``) becomes 502, an unreachable one
  (``HTTPConnectionError``) 503, a slow one (``HTTPTimeoutError``,
  ``HTTPDeadlineExceeded``) 504, each naming the upstream call;
- a wrong method gets 405; ``handler400`` to ``handler500`` answer rejected
  requests, unknown paths and crashes with JSON too (import them into a URLconf).

Every JSON error has ``error``, ``detail`` and ``request_id``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from shared_core.clients import (
    IDEMPOTENCY_KEY_HEADER,
    HTTPClient,
    HTTPClientError,
    HTTPConnectionError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from shared_core.middleware import json_error
from shared_core.models import BaseModel, SoftDeleteQuerySet

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_LIST_LIMIT",
    "APIError",
    "api_view",
    "create_once",
    "fetch_or_400",
    "get_or_404",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "health_urls",
    "healthz",
    "idempotency_key",
    "include_deleted",
    "json_body",
    "list_limit",
    "newest",
    "optional_str",
    "parse_uuid",
    "readyz",
    "replayed",
    "required_str",
    "rows",
    "visible",
]

#: Rows a list endpoint returns unless ``?limit=`` asks for fewer or more.
DEFAULT_LIST_LIMIT = 100
#: The most rows ``?limit=`` may ask for.
MAX_LIST_LIMIT = 1000
#: The longest ``Idempotency-Key`` accepted.
MAX_IDEMPOTENCY_KEY = 128

_M = TypeVar("_M", bound=Model)
_B = TypeVar("_B", bound=BaseModel)
View = Callable[..., HttpResponse]


class APIError(Exception):
    """An error the client caused or must know about; ``api_view`` renders it as JSON."""

    def __init__(self, status: int, error: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def api_view(*methods: str) -> Callable[[View], View]:
    """Allow ``methods`` only and turn ``APIError`` and upstream failures into JSON errors."""
    allowed = {m.upper() for m in methods}

    def decorate(view: View) -> View:
        @csrf_exempt  # token-authenticated API without cookies: CSRF does not apply
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(405, "method_not_allowed", f"use one of {', '.join(sorted(allowed))}")
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            try:
                return view(request, *args, **kwargs)
            except APIError as exc:
                return json_error(exc.status, exc.error, exc.detail, **exc.extra)
            except HTTPClientError as exc:
                return _upstream_error(exc)

        return wrapper

    return decorate


def _upstream_error(exc: HTTPClientError) -> JsonResponse:
    call = f"{exc.method} {exc.path}"
    if isinstance(exc, HTTPTimeoutError):
        return json_error(504, "upstream_timeout", f"{call} did not answer in time")
    if isinstance(exc, HTTPConnectionError):
        return json_error(503, "upstream_unavailable", f"{call} could not be reached")
    if isinstance(exc, HTTPStatusError):
        return json_error(502, "upstream_error", f"{call} answered {exc.status_code}")
    return json_error(502, "upstream_error", f"{call} failed")


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; 400 ``invalid_json`` otherwise."""
    try:
        data = json.loads(request.body or b"null")
    except RequestDataTooBig:
        raise APIError(413, "too_large", "the body is larger than the service accepts") from None
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise APIError(400, "invalid_json", "the body must be a JSON object")
    return data


def required_str(data: Mapping[str, Any], field: str, max_length: int) -> str:
    """A non-blank string of at most ``max_length`` characters; 400 naming ``field`` otherwise."""
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise APIError(400, "invalid_field", f"{field} must be a non-empty string", field=field)
    return _bounded(value.strip(), field, max_length)


def optional_str(data: Mapping[str, Any], field: str, max_length: int, default: str = "") -> str:
    """Like ``required_str`` but ``default`` when absent or null."""
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, str):
        raise APIError(400, "invalid_field", f"{field} must be a string", field=field)
    return _bounded(value.strip(), field, max_length)


def _bounded(value: str, field: str, max_length: int) -> str:
    if len(value) > max_length:
        raise APIError(400, "invalid_field", f"{field} is longer than {max_length} characters", field=field)
    return value


def parse_uuid(value: object, field: str) -> uuid.UUID:
    """``value`` as a UUID; 400 naming ``field`` when it is missing or malformed."""
    if isinstance(value, str | uuid.UUID):
        try:
            return uuid.UUID(str(value))
        except ValueError:
            pass
    raise APIError(400, "invalid_field", f"{field} must be a UUID", field=field)


def get_or_404(queryset: QuerySet[_M], pk: object, what: str) -> _M:
    """The row with primary key ``pk``; 404 for an unknown *or malformed* id, never a 500."""
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise APIError(404, "not_found", f"no {what} with id {str(pk)[:64]!r}") from None
    obj = queryset.filter(pk=key).first()
    if obj is None:
        raise APIError(404, "not_found", f"no {what} with id {key}")
    return obj


def include_deleted(request: HttpRequest) -> bool:
    """Whether ``?include_deleted=1`` (or ``true``) asks for soft-deleted rows too."""
    return request.GET.get("include_deleted", "").lower() in ("1", "true", "yes")


def list_limit(request: HttpRequest) -> int:
    """``?limit=`` as a number of rows (default ``DEFAULT_LIST_LIMIT``, at most ``MAX_LIST_LIMIT``)."""
    raw = request.GET.get("limit")
    if raw is None:
        return DEFAULT_LIST_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise APIError(400, "invalid_field", f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}", field="limit")
    return int(raw)


def fetch_or_400(client: HTTPClient, path: str, field: str, detail: str) -> Any:
    """GET ``path`` from another service; its 404 becomes our 400 naming ``field`` (other failures propagate).

    For references into another service (a requester, a recipient): the caller sent an id that
    names nothing there, which is bad input here, not a missing resource here.
    """
    try:
        return client.get_json(path)
    except HTTPStatusError as exc:
        if exc.status_code == 404:
            raise APIError(400, "invalid_field", detail, field=field) from None
        raise


def rows(objects: Iterable[_M], render: Callable[[_M], dict[str, Any]]) -> JsonResponse:
    """A JSON list response ``{"results": [...]}``."""
    return JsonResponse({"results": [render(obj) for obj in objects]})


def visible(model: type[_B], request: HttpRequest) -> SoftDeleteQuerySet[_B]:
    """``model``'s live rows, or every row when the request asks ``?include_deleted=1``."""
    manager = model.all_objects if include_deleted(request) else model.objects
    return cast(SoftDeleteQuerySet[_B], manager.all())


def newest(
    request: HttpRequest,
    queryset: QuerySet[_M],
    render: Callable[[_M], dict[str, Any]],
    uuid_filters: Iterable[str] = (),
) -> JsonResponse:
    """``{"results": [...]}`` with the newest ``?limit=`` rows of ``queryset`` (see ``list_limit``).

    Each name in ``uuid_filters`` that the query string carries (``?ticket_id=...``) filters the
    rows by that field; a malformed value is a 400 naming it.
    """
    for field in uuid_filters:
        if field in request.GET:
            queryset = queryset.filter(**{field: parse_uuid(request.GET[field], field)})
    return rows(queryset.order_by("-created_at")[: list_limit(request)], render)


def idempotency_key(request: HttpRequest) -> str | None:
    """The request's ``Idempotency-Key`` (1 to 128 printable ASCII characters), or ``None``; 400 if malformed."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        detail = f"{IDEMPOTENCY_KEY_HEADER} must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        raise APIError(400, "invalid_header", detail)
    return key


def replayed(model: type[_M], key: str | None, render: Callable[[_M], dict[str, Any]]) -> JsonResponse | None:
    """200 with the row stored under ``key`` (deleted or not), marked ``Idempotent-Replayed``; else ``None``."""
    earlier = model._base_manager.filter(idempotency_key=key).order_by("created_at").first() if key else None
    if earlier is None:
        return None
    response = JsonResponse(render(earlier), status=200)
    response["Idempotent-Replayed"] = "true"
    return response


def create_once(
    model: type[_M],
    key: str | None,
    create: Callable[[], _M],
    render: Callable[[_M], dict[str, Any]],
    after_create: Callable[[_M], None] | None = None,
) -> JsonResponse:
    """201 with ``create()``'s row, or 200 with the row an earlier request made under the same key.

    ``model`` has an ``idempotency_key`` field (unique among live rows) that
    ``create`` fills with ``key``; a replay is marked ``Idempotent-Replayed: true``.
    Two racing requests with one key store one row: the loser replays the winner's.
    ``after_create`` runs once, after the new row is committed, never on a replay.
    """

    earlier = replayed(model, key, render)
    if earlier is not None:
        return earlier
    try:
        with transaction.atomic():
            obj = create()
    except IntegrityError:
        earlier = replayed(model, key, render)
        if earlier is None:
            raise
        return earlier
    if after_create is not None:
        after_create(obj)
    return JsonResponse(render(obj), status=201)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers; needs no token and touches no database."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: every configured database answers ``SELECT 1``; 503 JSON otherwise."""
    try:
        for alias in connections:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
    except DatabaseError:
        return json_error(503, "not_ready", "the database is not reachable")
    return JsonResponse({"status": "ready"})


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON for requests Django itself rejects (a body over its limits, a bad Host header)."""
    return json_error(400, "bad_request", "the request was rejected before reaching the API")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON for requests Django itself forbids."""
    return json_error(403, "forbidden", "the request is not allowed")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON for unknown paths (set ``handler404 = "shared_core.api.handler404"`` in the URLconf)."""
    return json_error(404, "not_found", f"no resource at {request.path[:200]}")


def handler500(request: HttpRequest) -> JsonResponse:
    """JSON for unexpected errors; the details go to the log, not to the client."""
    return json_error(500, "internal_error", "the service failed; see its log for this request id")


#: ``urlpatterns = [*health_urls, ...]``: ``/healthz`` and ``/readyz`` for a service's URLconf.
health_urls: list[URLPattern] = [path("healthz", healthz), path("readyz", readyz)]
