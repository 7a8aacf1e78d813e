"""Middleware every service installs: request context and the service token check.

``service_settings()`` installs them; a service adds nothing.

Tokens are per caller. ``SERVICE_ACCEPTED_TOKENS`` maps each calling
service's name to the tokens it may present, several at once while a token is
rotated; the name of the caller whose token matched is ``request.caller``,
is returned as ``X-Service-Caller`` (so the access line logs it), and
``callers("ticket-service")`` restricts a view to the callers it names.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from contextvars import ContextVar
from functools import wraps
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.http.request import HttpHeaders

from shared_core._base.tracing import (
    TRACEPARENT_HEADER,
    TRACERESPONSE_HEADER,
    TRACESTATE_HEADER,
    TraceContext,
    trace_context,
)
from shared_core._web.db import cut_at_deadline, statement_deadline
from shared_core._web.errors import json_error
from shared_core._web.uploads import release
from shared_core.context import (
    DEADLINE_HEADER,
    REQUEST_ID_HEADER,
    Deadline,
    DeadlineExceeded,
    get_deadline,
    parse_budget,
    request_context,
)

__all__ = [
    "CALLER_HEADER",
    "DEFAULT_FLEET_CALLER",
    "DEFAULT_TOKEN_EXEMPT_PATHS",
    "ProtocolMiddleware",
    "RequestContextMiddleware",
    "ServiceTokenMiddleware",
    "bearer_caller",
    "callers",
    "current_caller",
    "match_token",
]

_caller: ContextVar[str | None] = ContextVar("shared_core_caller", default=None)

#: Exact paths that need no service token unless ``SERVICE_TOKEN_EXEMPT_PATHS`` says otherwise.
DEFAULT_TOKEN_EXEMPT_PATHS: Final = ("/healthz", "/readyz")
#: The caller name of ``SERVICE_AUTH_TOKEN`` when ``SERVICE_ACCEPTED_TOKENS`` is not set (one fleet-wide token).
DEFAULT_FLEET_CALLER: Final = "fleet"
#: Response header naming the authenticated caller, so gunicorn's access line can log it.
CALLER_HEADER: Final = "X-Service-Caller"

View = Callable[..., HttpResponse]

_DEADLINE_KEY: Final = HttpHeaders.to_wsgi_name(DEADLINE_HEADER)
_REQUEST_ID_KEY: Final = HttpHeaders.to_wsgi_name(REQUEST_ID_HEADER)
_TRACEPARENT_KEY: Final = HttpHeaders.to_wsgi_name(TRACEPARENT_HEADER)
_TRACESTATE_KEY: Final = HttpHeaders.to_wsgi_name(TRACESTATE_HEADER)


class RequestContextMiddleware:
    """Takes ``X-Request-ID``, ``X-Request-Deadline`` and W3C ``traceparent`` / ``tracestate`` from the request.

    The response carries the request id, and the request's span as
    ``traceresponse`` (shared_core._base.tracing: the caller's trace continued, or a
    new one when none or a malformed one arrived).

    A missing or unsafe id is replaced by a new one. ``request.request_id``
    holds it, and ``get_request_id()`` / ``get_deadline()`` return the context
    anywhere during the request. The deadline bounds outgoing HTTP calls and
    every database statement (``shared_core._web.db``); the files its upload
    spooled are removed when it ends (``shared_core._web.uploads``). A request whose budget is
    already spent gets 504 without reaching the view, and so does one whose
    budget runs out in a statement (``DeadlineExceeded``). Put it first in
    ``MIDDLEWARE``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.tracing = getattr(settings, "TRACING_ENABLED", True)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META  # not request.headers, which copies every header into a new dict per request
        budget = parse_budget(meta.get(_DEADLINE_KEY))
        deadline = Deadline.after(budget) if budget is not None else None
        trace = None
        if self.tracing:
            trace = TraceContext.from_headers(meta.get(_TRACEPARENT_KEY), meta.get(_TRACESTATE_KEY))
        traced = trace_context(trace) if trace is not None else nullcontext()
        with request_context(meta.get(_REQUEST_ID_KEY), deadline) as request_id, traced:
            request.request_id = request_id  # type: ignore[attr-defined]
            if deadline is not None and deadline.expired:
                response: HttpResponse = json_error(504, "deadline_exceeded", "the caller's deadline had passed")
            else:
                try:
                    with statement_deadline(deadline):
                        response = self.get_response(request)
                finally:
                    release(request)
            response[REQUEST_ID_HEADER] = request_id
            if trace is not None:
                response[TRACERESPONSE_HEADER] = trace.traceparent
            return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """504 JSON for work cut at the request's deadline, 503 JSON (``Retry-After: 1``) when the database
        failed to serve it (``OperationalError``, ``InterfaceError``: restarting, gone, disk full); anything
        else is Django's to handle.

        That includes a COMMIT cut by ``statement_timeout``: PostgreSQL can act on a timer that fired during
        the transaction's last moments while it commits, and then reports the transaction rolled back.
        """
        if isinstance(exception, DeadlineExceeded) or (cut_at_deadline(exception) and get_deadline() is not None):
            return json_error(504, "deadline_exceeded", "the request's deadline passed while it was served")
        if isinstance(exception, OperationalError | InterfaceError) and not cut_at_deadline(exception):
            # Restarting, unreachable, out of disk or connections: the client may retry; nothing was half-written,
            # since the transaction the error ended is rolled back.
            refused = json_error(503, "database_unavailable", "the database could not serve this request; retry")
            refused["Retry-After"] = "1"
            return refused
        return None


class ProtocolMiddleware:
    """HTTP's method rules for every view, whatever framework answers it.

    ``HEAD`` is served as ``GET`` with the body dropped (headers, including
    ``Content-Length``, stay); a 405 is the JSON envelope with an ``Allow``
    header that lists ``HEAD`` wherever ``GET`` is allowed; a 204 or 304
    carries no ``Content-Type``. Put it right after
    ``RequestContextMiddleware``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        response = self.get_response(request)
        if head:
            request.method = "HEAD"
            self._drop_body(response)
        if response.status_code == 405:
            response = self._method_not_allowed(response)
        if response.status_code in (204, 304) and "Content-Type" in response:
            del response["Content-Type"]
        return response

    @staticmethod
    def _drop_body(response: HttpResponse) -> None:
        if getattr(response, "streaming", False):
            response.close()
            response.streaming_content = []  # type: ignore[attr-defined]
        else:
            response.content = b""

    @staticmethod
    def _method_not_allowed(response: HttpResponse) -> HttpResponse:
        allowed = {m.strip().upper() for m in response.get("Allow", "").split(",") if m.strip()}
        if "GET" in allowed:
            allowed.add("HEAD")
        refused = json_error(405, "method_not_allowed", f"use one of {', '.join(sorted(allowed)) or 'none'}")
        refused["Allow"] = ", ".join(sorted(allowed))
        return refused


def _accepted_tokens() -> list[tuple[str, bytes]]:
    """(caller, token) pairs from ``SERVICE_ACCEPTED_TOKENS``, else ``SERVICE_AUTH_TOKEN`` as the fleet's."""
    accepted: Mapping[str, Sequence[str]] | None = getattr(settings, "SERVICE_ACCEPTED_TOKENS", None)
    if not accepted:
        token = getattr(settings, "SERVICE_AUTH_TOKEN", None)
        if not token:
            raise ImproperlyConfigured(
                "ServiceTokenMiddleware needs SERVICE_ACCEPTED_TOKENS or the SERVICE_AUTH_TOKEN setting"
            )
        accepted = {DEFAULT_FLEET_CALLER: [token]}
    pairs = [(caller, token.encode()) for caller, tokens in accepted.items() for token in tokens if token]
    if not pairs:
        raise ImproperlyConfigured("SERVICE_ACCEPTED_TOKENS names no token")
    return pairs


class ServiceTokenMiddleware:
    """Requires ``Authorization: Bearer <token>`` of a known caller on every path but the exempt ones.

    Accepted tokens come from ``SERVICE_ACCEPTED_TOKENS`` (``{caller: [token, ...]}``),
    else ``SERVICE_AUTH_TOKEN`` under the caller name ``DEFAULT_FLEET_CALLER``.
    Exempt paths are matched exactly, from ``SERVICE_TOKEN_EXEMPT_PATHS``
    (default ``DEFAULT_TOKEN_EXEMPT_PATHS``). A missing or unknown token gets
    401 with a JSON body. The presented token is compared with every accepted
    token in constant time, whichever matches, and is never echoed. Without
    any token configured the service refuses to start.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.accepted = _accepted_tokens()
        self.exempt = frozenset(getattr(settings, "SERVICE_TOKEN_EXEMPT_PATHS", DEFAULT_TOKEN_EXEMPT_PATHS))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in self.exempt:
            return self.get_response(request)
        caller = bearer_caller(request.headers.get("Authorization", ""), self.accepted)
        if caller is None:
            refused = json_error(401, "unauthorized", "a valid service token is required")
            refused["WWW-Authenticate"] = 'Bearer realm="service"'
            return refused
        request.caller = caller  # type: ignore[attr-defined]
        token = _caller.set(caller)
        try:
            response = self.get_response(request)
        finally:
            _caller.reset(token)
        response[CALLER_HEADER] = caller
        return response


def current_caller() -> str | None:
    """The caller ``ServiceTokenMiddleware`` authenticated for the request in progress, or ``None``
    outside a request or on an exempt path."""
    return _caller.get()


def bearer_caller(authorization: str, accepted: list[tuple[str, bytes]] | None = None) -> str | None:
    """The caller an ``Authorization: Bearer <token>`` header names, among ``accepted`` (default: the
    settings'), or ``None`` for any other header."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return None
    return match_token(given, accepted)


def match_token(given: str, accepted: list[tuple[str, bytes]] | None = None) -> str | None:
    """The caller whose token ``given`` is, among ``accepted`` (default: the settings'), or ``None``.

    ``given`` is compared with every accepted token in constant time, whichever matches.
    """
    presented = given.encode("utf-8", "surrogateescape")
    found = None
    for caller, token in _accepted_tokens() if accepted is None else accepted:
        if hmac.compare_digest(presented, token):  # no early exit: the time does not tell which token matched
            found = caller
    return found


def callers(*names: str) -> Callable[[View], View]:
    """Let only the named callers reach a plain Django view; another authenticated caller gets 403 JSON.

    ``@callers("ticket-service")``; it relies on ``ServiceTokenMiddleware``.
    An API operation says the same with ``auth=shared_core.api.ServiceToken("ticket-service")``.
    """
    allowed = frozenset(names)
    if not allowed:
        raise ValueError("callers() needs at least one caller name")

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if getattr(request, "caller", None) not in allowed:
                return json_error(403, "forbidden", f"only {', '.join(sorted(allowed))} may call this endpoint")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
