"""The WSGI entry point every service uses: Django's application behind a guard for requests it cannot parse.

Django builds its request object before any middleware runs, so a header it
cannot parse there (``Content-Type: text/plain; x*=nope''%41``, an RFC 2231
parameter naming an unknown charset) escapes as an exception, and gunicorn
answers with an HTML 500 and a traceback. ``get_wsgi_application()`` checks
those headers first and answers such a request 400 with the JSON envelope
(``error``, ``detail``, ``request_id``) and the ``X-Request-ID`` header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application as _django_application
from django.utils.http import parse_header_parameters

from shared_core.context import REQUEST_ID_HEADER, new_request_id, valid_request_id

__all__ = ["get_wsgi_application"]

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def get_wsgi_application() -> WSGIApplication:
    """Django's WSGI application (``django.core.wsgi.get_wsgi_application``) behind the header guard."""
    return _guarded(_django_application())


def _guarded(handler: WSGIHandler) -> WSGIApplication:
    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            parse_header_parameters(environ.get("CONTENT_TYPE", ""))
        except ValueError:
            return _reject(environ, start_response, "Content-Type has a parameter that cannot be parsed")
        return handler(environ, start_response)

    return application


def _reject(environ: dict[str, Any], start_response: StartResponse, detail: str) -> list[bytes]:
    given = environ.get("HTTP_X_REQUEST_ID")
    request_id = given if valid_request_id(given) else new_request_id()
    logger.warning("rejected %s %s before Django: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), detail)
    body = json.dumps({"error": "invalid_header", "detail": detail, "request_id": request_id}).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            (REQUEST_ID_HEADER, request_id),
        ],
    )
    return [body]
