"""What every service's JSON API shares, as a thin layer on django-ninja and pydantic.

django-ninja parses and validates input, dispatches, serialises through
schemas and generates the OpenAPI document. This module adds only what it
does not do:

- ``service_api()``: a ``NinjaAPI`` whose every error is the JSON envelope
  (``error``, ``detail``, ``request_id``, and ``field`` when one input field
  is to blame), documented in the OpenAPI document, with ``/healthz`` and
  ``/readyz`` in it and the service token declared as its security scheme;
- input types that reject what a database cannot store (``text()``,
  ``Timestamp``) with a 400 naming the field (pydantic itself refuses a
  lone surrogate);
- ``KeysetPagination``: ``?limit=`` and ``?cursor=`` over ``(created_at, id)``,
  so every row is reachable at the same cost per page;
- ``ListFilters`` and ``visible()``: the soft-delete list filter;
- ``create_once()``: idempotent creation under an ``Idempotency-Key``, with
  the body's fingerprint, so a key reused with another body is a 422;
- ``restore_or_409()``, ``get_or_404()`` and ``fetch_reference()``.

Errors are ``application/json``, not RFC 9457 ``application/problem+json``:
the envelope predates this module, clients read ``error`` as a stable code,
and the two carry the same facts (``error`` ~ ``type``, ``detail`` ~ ``detail``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeVar

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Field, Header, NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.pagination import PaginationBase
from ninja.parser import Parser
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import AfterValidator, AwareDatetime, BaseModel, StringConstraints

from shared_core import __version__
from shared_core.clients import (
    IDEMPOTENCY_KEY_HEADER,
    HTTPClient,
    HTTPClientError,
    HTTPConnectionError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from shared_core.db import schema_is_current
from shared_core.middleware import json_error, match_token
from shared_core.models import BaseModel as SoftDeleteModel
from shared_core.uploads import UploadSpoolFull

__all__ = [
    "CURSOR_PATTERN",
    "DEFAULT_PAGE_SIZE",
    "ERROR_RESPONSES",
    "ERROR_STATUSES",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_PAGE_SIZE",
    "APIError",
    "ErrorOut",
    "IdempotencyKey",
    "KeysetPagination",
    "ListFilters",
    "ServiceToken",
    "Timestamp",
    "create_once",
    "cursor_after",
    "fetch_reference",
    "fingerprint",
    "get_or_404",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "restore_or_409",
    "service_api",
    "text",
    "visible",
]

#: Rows a list returns unless ``?limit=`` asks for another number.
DEFAULT_PAGE_SIZE: Final = 100
#: The most rows ``?limit=`` may ask for.
MAX_PAGE_SIZE: Final = 1000
#: The longest ``Idempotency-Key`` accepted.
MAX_IDEMPOTENCY_KEY: Final = 128
#: Every status an operation may answer with the error envelope; each operation documents them all.
ERROR_STATUSES: Final = (400, 401, 403, 404, 409, 413, 422, 502, 503, 504, 507)

_M = TypeVar("_M", bound=Model)
_S = TypeVar("_S", bound=SoftDeleteModel)


class APIError(Exception):
    """An error the client caused or must know about; the API renders it as the JSON envelope."""

    def __init__(self, status: int, error: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


class ErrorOut(Schema):
    """The JSON body of every error: a stable code, a sentence for people, and the request id."""

    error: str
    detail: str
    request_id: str
    field: str | None = None


#: ``responses=`` for an operation: its success statuses plus ``ERROR_RESPONSES``.
ERROR_RESPONSES: Final[dict[int, type[ErrorOut]]] = dict.fromkeys(ERROR_STATUSES, ErrorOut)


#: A string with no NUL character: both databases refuse NUL, and only at write time.
_NO_NUL: Final = r"^[^\x00]*$"
#: The same with one character that is not a space, tab or line break. (Not \S: Python's and the Rust
#: regex engine's ideas of Unicode whitespace differ, and the document must mean what validation does.)
_NOT_BLANK: Final = r"^[^\x00]*[^\x00\t\n\r ][^\x00]*$"


def text(max_length: int, *, blank: bool = False) -> Any:
    """A string type of at most ``max_length`` characters that every database can store.

    ``blank=False``: it must hold a character other than a space, tab or
    line break. A NUL character is a 400 naming the field, never a 500 at
    write time, and the document states it as the ``pattern``.
    """
    return Annotated[str, StringConstraints(max_length=max_length, pattern=_NO_NUL if blank else _NOT_BLANK)]


def _representable(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of representable times") from None


#: An ISO 8601 time with a zone, in UTC once parsed; one whose UTC time has no year 1-9999 is a 400.
Timestamp = Annotated[AwareDatetime, AfterValidator(_representable)]

#: The ``Idempotency-Key`` header: 1-128 printable ASCII characters.
IdempotencyKey = Annotated[
    str | None,
    Header(alias=IDEMPOTENCY_KEY_HEADER, min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=r"^[ -~]+$"),
]


class _InvalidJSON(ValueError):
    pass


class JSONParser(Parser):
    """ninja's parser, but any body that is not a JSON object (too deep to parse, say) is ``invalid_json``."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)
        except RecursionError:
            raise _InvalidJSON("the body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError):
            raise _InvalidJSON("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _InvalidJSON("the body must be a JSON object")
        return data


class ServiceToken(HttpBearer):
    """The service token as the document's security scheme (``ServiceTokenMiddleware`` checks it first).

    ``ServiceToken("ticket-service")`` on an operation lets only those
    callers in: another authenticated caller gets 403, before its input is
    even read. No names: any authenticated caller.
    """

    openapi_scheme = "bearer"

    def __init__(self, *callers: str) -> None:
        super().__init__()
        self.callers = frozenset(callers)

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        # Without ServiceTokenMiddleware in front (a bare benchmark baseline, say), check the token here.
        caller: str | None = getattr(request, "caller", None) or match_token(token)
        if caller is not None and self.callers and caller not in self.callers:
            raise APIError(403, "forbidden", f"only {', '.join(sorted(self.callers))} may call this endpoint")
        return caller


class Health(Schema):
    status: str


def _field(loc: Any) -> str:
    names = [str(part) for part in loc[1:] if part not in ("payload", "filters", "pagination", "body")]
    return ".".join(names) or str(loc[-1])


def _error_response(request: HttpRequest, exc: Any) -> HttpResponse:
    """The envelope for every error a view raises; anything unknown goes on to Django's JSON handler500."""
    if isinstance(exc, ValidationError):
        problems = [(_field(e.get("loc", ("?",))), str(e.get("msg", "is invalid"))) for e in exc.errors]
        detail = "; ".join(f"{name}: {message}" for name, message in problems)
        return json_error(400, "invalid_field", detail, field=problems[0][0] if problems else None)
    if isinstance(exc, APIError):
        return json_error(exc.status, exc.error, exc.detail, **exc.extra)
    if isinstance(exc, HTTPClientError):
        return _upstream_error(exc)
    if isinstance(exc, AuthenticationError):  # before HttpError, its base class
        return json_error(401, "unauthorized", "a valid service token is required")
    if isinstance(exc, HttpError):
        if isinstance(exc.__cause__, _InvalidJSON):
            return json_error(400, "invalid_json", str(exc.__cause__))
        return json_error(exc.status_code, "bad_request" if exc.status_code == 400 else "error", str(exc))
    if isinstance(exc, Http404 | ObjectDoesNotExist):  # a row gone meanwhile (RowDeleted) included
        return json_error(404, "not_found", str(exc) or "no such resource")
    if isinstance(exc, RequestDataTooBig):
        return json_error(413, "too_large", "the body is larger than the service accepts")
    if isinstance(exc, UploadSpoolFull):
        return json_error(507, "insufficient_storage", str(exc))
    if isinstance(exc, MultiPartParserError):
        return json_error(400, "invalid_body", "the multipart body is malformed")
    # Django's handler500 (JSON) and the middleware's deadline handling take it from here; never a traceback.
    raise exc


def _upstream_error(exc: HTTPClientError) -> JsonResponse:
    call = f"{exc.method} {exc.path}"
    if isinstance(exc, HTTPTimeoutError):
        return json_error(504, "upstream_timeout", f"{call} did not answer in time")
    if isinstance(exc, HTTPConnectionError):
        return json_error(503, "upstream_unavailable", f"{call} could not be reached")
    if isinstance(exc, HTTPStatusError):
        return json_error(502, "upstream_error", f"{call} answered {exc.status_code}")
    return json_error(502, "upstream_error", f"{call} failed")


def service_api(service_name: str, *routers: tuple[str, Router]) -> NinjaAPI:
    """The service's API: ``routers`` mounted under their prefixes, plus ``/healthz`` and ``/readyz``.

    Mount it at the root (``path("", api.urls)``). The OpenAPI document is
    served at ``/api/openapi.json``; every operation but the health checks
    requires the service token.
    """
    api = NinjaAPI(
        title=service_name,
        version=__version__,
        description=f"The JSON API of {service_name}. Errors are the shared_core envelope (ErrorOut).",
        auth=ServiceToken(),
        parser=JSONParser(),
        openapi_url="/api/openapi.json",
        docs_url=None,
        urls_namespace=service_name,
    )
    # ninja's own handlers for these would answer in its format: the envelope replaces each of them.
    for handled in (ValidationError, HttpError, AuthenticationError, Http404, ObjectDoesNotExist, Exception):
        api.add_exception_handler(handled, _error_response)

    @api.get("/healthz", auth=None, response={200: Health}, tags=["health"])
    def healthz(request: HttpRequest) -> dict[str, str]:
        """Liveness: the process answers; needs no token and touches no database."""
        return {"status": "ok"}

    @api.get("/readyz", auth=None, response={200: Health, 503: ErrorOut}, tags=["health"])
    def readyz(request: HttpRequest) -> Any:
        """Readiness: every configured database answers ``SELECT 1`` and the default one has every migration
        of this code applied; 503 otherwise (a replica started before its release's migrations ran waits)."""
        try:
            for alias in connections:
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")
            current = schema_is_current()
        except DatabaseError:
            raise APIError(503, "not_ready", "the database is not reachable") from None
        if not current:
            raise APIError(503, "schema_behind", "this release's migrations are not applied yet")
        return {"status": "ready"}

    for prefix, router in routers:
        api.add_router(prefix, router)
    return api


class ListFilters(Schema):
    """``?include_deleted=true`` lists soft-deleted rows too.

    A service's subclass adds exact-match filters: each further field that
    the query sets (``ticket_id: UUID | None = None``) filters the rows by the
    model field of that name.
    """

    include_deleted: bool = False


def visible(model: type[_S], filters: ListFilters) -> QuerySet[_S]:
    """``model``'s live rows (every row when ``filters.include_deleted``), narrowed by the other filters set."""
    manager = model.all_objects if filters.include_deleted else model.objects
    return manager.filter(**filters.model_dump(exclude={"include_deleted"}, exclude_none=True))


#: A page cursor: the last row's ``created_at`` in microseconds since 1970 (UTC), ``_``, and its id in hex.
CURSOR_PATTERN: Final = r"^[0-9]{1,16}_[0-9a-f]{32}$"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class KeysetPagination(PaginationBase):
    """Newest first, ``?limit=`` rows a page, and ``next``: the cursor of the page after, or ``null``.

    The cursor holds the page's last row's ``(created_at, id)``; the next
    page is the rows strictly before it in that order: an index range scan
    wherever it starts, so a page a million rows deep costs what the first
    does, and rows inserted meanwhile never shift a page. Every string that
    matches ``CURSOR_PATTERN`` is a position, so no cursor is ever refused
    for pointing at nothing.
    """

    class Input(Schema):
        limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
        cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="`next` of the page before")

    class Output(Schema):
        results: list[Any]
        next: str | None

    items_attribute = "results"

    def paginate_queryset(self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any) -> Any:
        if pagination.cursor is not None:
            micros, _, key = pagination.cursor.partition("_")
            created_at, pk = _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=key)
            queryset = queryset.filter(
                Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk), created_at__lte=created_at
            )
        rows = list(queryset.order_by("-created_at", "-pk")[: pagination.limit + 1])
        page, more = rows[: pagination.limit], len(rows) > pagination.limit
        return {"results": page, "next": cursor_after(page[-1]) if more else None}


def cursor_after(row: Any) -> str:
    """The cursor of the page that starts after ``row`` (a ``BaseModel`` row) in ``KeysetPagination``."""
    return f"{(row.created_at - _EPOCH) // _MICROSECOND}_{row.pk.hex}"


def get_or_404(queryset: QuerySet[_M], pk: uuid.UUID, what: str) -> _M:
    """The row with primary key ``pk``, or a 404 naming ``what``."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise APIError(404, "not_found", f"no {what} with id {pk}")
    return obj


def restore_or_409(obj: SoftDeleteModel, what: str) -> None:
    """``obj.restore()``; a clash with a live row (a unique value taken meanwhile) is a 409, not a 500."""
    try:
        with transaction.atomic():
            obj.restore()
    except IntegrityError:
        raise APIError(409, "conflict", f"a live {what} already holds a value this one needs") from None


def fetch_reference(client: HTTPClient, path: str, field: str, detail: str) -> Any:
    """GET ``path`` from another service: the row that a body's ``field`` refers to (other failures propagate).

    Its 404 is our 404 naming ``field`` (as Stripe's "No such customer"): the request is well formed,
    and what it refers to does not exist.
    """
    try:
        return client.get_json(path)
    except HTTPStatusError as exc:
        if exc.status_code == 404:
            raise APIError(404, "not_found", detail, field=field) from None
        raise


def fingerprint(payload: BaseModel) -> str:
    """The sha256 of ``payload`` as canonical JSON: equal for equal bodies, whatever their key order."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_once(
    response: HttpResponse,
    model: type[_M],
    key: str | None,
    payload: BaseModel,
    create: Callable[[str], _M],
    *,
    check: Callable[[], None] | None = None,
    after_create: Callable[[_M], None] | None = None,
) -> Status[_M]:
    """``Status(201, row)`` from ``create(fingerprint)``, or ``Status(200, row)`` stored under ``key`` before.

    ``model`` has ``idempotency_key`` (unique among live rows) and
    ``idempotency_fingerprint`` fields, which ``create`` fills with ``key``
    and the fingerprint it is given. A replay answers the first request's row
    whatever happened since (its references deleted, a neighbour down) and
    marks ``response`` ``Idempotent-Replayed: true``; the same key with a
    different body is a 422, and a replay of a row deleted since is a 409.
    ``check`` runs only for a new row, before it is
    created and outside any transaction (it may call another service). Two
    racing requests with one key store one row: the loser replays the
    winner's. ``after_create`` runs once, after the new row is committed.
    """
    digest = fingerprint(payload)
    earlier = _replay(response, model, key, digest)
    if earlier is not None:
        return Status(200, earlier)
    if check is not None:
        check()
    try:
        with transaction.atomic():
            obj = create(digest)
    except IntegrityError:
        earlier = _replay(response, model, key, digest)
        if earlier is None:
            raise
        return Status(200, earlier)
    if after_create is not None:
        after_create(obj)
    return Status(201, obj)


def _replay(response: HttpResponse, model: type[_M], key: str | None, digest: str) -> _M | None:
    if key is None:
        return None
    earlier = model._base_manager.filter(idempotency_key=key).order_by("created_at").first()
    if earlier is None:
        return None
    stored = getattr(earlier, "idempotency_fingerprint", None)
    if stored and stored != digest:
        raise APIError(422, "idempotency_key_reused", f"{IDEMPOTENCY_KEY_HEADER} was first used with a different body")
    if getattr(earlier, "is_deleted", False):
        # Replaying it would tell the client a row exists that a GET then says does not.
        detail = f"the row this {IDEMPOTENCY_KEY_HEADER} created, {earlier.pk}, has since been deleted"
        raise APIError(409, "created_then_deleted", detail)
    response["Idempotent-Replayed"] = "true"
    return earlier


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON for requests Django itself rejects (a bad Host header, a malformed multipart body)."""
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, "too_large", "the body is larger than the service accepts")
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
