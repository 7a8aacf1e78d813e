"""The error envelope, built in one place: every error a service answers is this JSON body.

``{"error": <stable code>, "detail": <a sentence for people>, "request_id": ...}``,
plus ``field`` when one input field is to blame. ``APIError`` raised in a view
becomes it, and so do the errors Django itself answers (``handler400`` …
``handler500``), the middleware's and the WSGI guard's refusals.

It is ``application/json``, not RFC 9457 ``application/problem+json``: the
envelope predates this module, clients read ``error`` as a stable code, and
the two carry the same facts (``error`` ~ ``type``, ``detail`` ~ ``detail``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from shared_core.context import get_request_id

__all__ = ["APIError", "envelope", "handler400", "handler403", "handler404", "handler500", "json_error"]


class APIError(Exception):
    """An error the client caused or must know about; the API renders it as the JSON envelope.

    ``APIError(404, "not_found", "no ticket with id …", field="ticket_id")``:
    ``status`` is the HTTP status, ``error`` the stable code, ``detail`` the
    sentence; ``extra`` keys join the body.
    """

    def __init__(self, status: int, error: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def envelope(error: str, detail: str, request_id: str | None, **extra: object) -> dict[str, Any]:
    """The body of every error: ``error``, ``detail``, ``request_id`` and any ``extra`` keys."""
    return {"error": error, "detail": detail, "request_id": request_id, **extra}


def json_error(status: int, error: str, detail: str, **extra: object) -> JsonResponse:
    """The envelope as a response, with the current request's id."""
    return JsonResponse(envelope(error, detail, get_request_id(), **extra), status=status)


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
