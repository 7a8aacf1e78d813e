"""Middleware every service installs: request context and the service token check.

``MIDDLEWARE = ["shared_core.middleware.RequestContextMiddleware", ...,
"shared_core.middleware.ServiceTokenMiddleware"]`` is all a service adds.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from shared_core.context import (
    DEADLINE_HEADER,
    REQUEST_ID_HEADER,
    Deadline,
    get_request_id,
    parse_budget,
    request_context,
)

__all__ = ["DEFAULT_TOKEN_EXEMPT_PATHS", "RequestContextMiddleware", "ServiceTokenMiddleware", "json_error"]

#: Path prefixes that need no service token unless ``SERVICE_TOKEN_EXEMPT_PATHS`` says otherwise.
DEFAULT_TOKEN_EXEMPT_PATHS = ("/healthz", "/readyz")


def json_error(status: int, error: str, detail: str, **extra: object) -> JsonResponse:
    """The JSON error body every shared_core response uses: ``error``, ``detail`` and ``request_id``."""
    return JsonResponse({"error": error, "detail": detail, "request_id": get_request_id(), **extra}, status=status)


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` and ``X-Request-Deadline`` from the request and returns the id.

    A missing or unsafe id is replaced by a new one. ``request.request_id``
    holds it, and ``get_request_id()`` / ``get_deadline()`` return the context
    anywhere during the request. A request whose budget is already spent gets
    504 without reaching the view. Put it first in ``MIDDLEWARE``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        budget = parse_budget(request.headers.get(DEADLINE_HEADER))
        deadline = Deadline.after(budget) if budget is not None else None
        with request_context(request.headers.get(REQUEST_ID_HEADER), deadline) as request_id:
            request.request_id = request_id  # type: ignore[attr-defined]
            if deadline is not None and deadline.expired:
                response: HttpResponse = json_error(504, "deadline_exceeded", "the caller's deadline had passed")
            else:
                response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            return response


class ServiceTokenMiddleware:
    """Requires ``Authorization: Bearer <SERVICE_AUTH_TOKEN>`` on every path but the exempt ones.

    Exempt path prefixes come from ``SERVICE_TOKEN_EXEMPT_PATHS`` (default
    ``DEFAULT_TOKEN_EXEMPT_PATHS``). A missing or wrong token gets 401 with a
    JSON body; the comparison is constant-time and the expected token is never
    echoed. Without a configured token the service refuses to start.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        token = getattr(settings, "SERVICE_AUTH_TOKEN", None)
        if not token:
            raise ImproperlyConfigured("ServiceTokenMiddleware needs the SERVICE_AUTH_TOKEN setting")
        self.expected = f"Bearer {token}".encode()
        self.exempt = tuple(getattr(settings, "SERVICE_TOKEN_EXEMPT_PATHS", DEFAULT_TOKEN_EXEMPT_PATHS))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(self.exempt):
            return self.get_response(request)
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.expected):
            response = json_error(401, "unauthorized", "a valid service token is required")
            response["WWW-Authenticate"] = 'Bearer realm="service"'
            return response
        return self.get_response(request)
