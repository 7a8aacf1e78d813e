"""What every service's JSON API shares, as a thin layer on django-ninja and pydantic.

django-ninja parses and validates input, dispatches, serialises through
schemas and generates the OpenAPI document. This module adds only what it
does not do:

- ``service_api()``: a ``NinjaAPI`` whose every error is the JSON envelope
  (``error``, ``detail``, ``request_id``, and ``field`` when one input field
  is to blame), documented in the OpenAPI document, with ``/healthz`` and
  ``/readyz`` in it and the service token declared as its security scheme;
- input types that reject what a database cannot store (``text()``,
  ``Timestamp``) with a 400 naming the field;
- ``KeysetPagination``: ``?limit=`` and ``?cursor=`` over ``(created_at, id)``;
- ``ListFilters`` and ``visible()``: the soft-delete list filter;
- ``create_once()``: idempotent creation under an ``Idempotency-Key``;
- ``restore_or_409()``, ``get_or_404()`` and ``fetch_reference()``;
- ``soft_delete_routes()``: a soft-delete model's list, get, delete and restore endpoints;
- ``ServiceToken`` and ``callers()``: which callers may reach an operation or a view;
- ``handler400`` … ``handler500``: Django's own errors as the envelope (name them in the root URLconf).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import DatabaseError, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from shared_core import __version__
from shared_core._web.db import schema_is_current
from shared_core._web.errors import APIError, handler400, handler403, handler404, handler500, json_error
from shared_core._web.idempotency import create_once
from shared_core._web.inputs import IdempotencyKey, InvalidJSON, JSONParser, Timestamp, text
from shared_core._web.lookups import ListFilters, fetch_reference, get_or_404, restore_or_409, visible
from shared_core._web.middleware import callers, match_token
from shared_core._web.pagination import KeysetPagination
from shared_core._web.routes import soft_delete_routes
from shared_core._web.schemas import ERROR_RESPONSES, ErrorOut
from shared_core._web.uploads import UploadSpoolFull
from shared_core.clients import (
    HTTPClientError,
    HTTPConnectionError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPUpstreamUnavailable,
)

__all__ = [
    "ERROR_RESPONSES",
    "APIError",
    "ErrorOut",
    "IdempotencyKey",
    "KeysetPagination",
    "ListFilters",
    "ServiceToken",
    "Timestamp",
    "callers",
    "create_once",
    "fetch_reference",
    "get_or_404",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "restore_or_409",
    "service_api",
    "soft_delete_routes",
    "text",
    "visible",
]


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
        if isinstance(exc.__cause__, InvalidJSON):
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
    if isinstance(exc, HTTPUpstreamUnavailable):
        # Sent nowhere: the circuit is open or the bulkhead full; Retry-After says when a call may go through.
        refused = json_error(503, "upstream_unavailable", f"{call} was not sent: {exc.detail}")
        refused["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return refused
    if isinstance(exc, HTTPConnectionError):
        return json_error(503, "upstream_unavailable", f"{call} could not be reached")
    if isinstance(exc, HTTPStatusError) and exc.status_code == 503:
        # Unavailable below is unavailable here: the caller may retry as it would with this service's own 503.
        unavailable = json_error(503, "upstream_unavailable", f"{call} answered 503; retry")
        unavailable["Retry-After"] = "1"
        return unavailable
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
