"""The WSGI entry point every service uses: Django's application behind a guard for requests it cannot parse.

Django builds its request object before any middleware runs, so a header it
cannot parse there (``Content-Type: text/plain; x*=nope''%41``, an RFC 2231
parameter naming an unknown charset) escapes as an exception, and gunicorn
answers with an HTML 500 and a traceback. ``get_wsgi_application()`` checks
those headers first and answers such a request 400 with the JSON envelope
(``error``, ``detail``, ``request_id``) and the ``X-Request-ID`` header.

Django also reads a body only as far as ``Content-Length`` says, so a
``Transfer-Encoding: chunked`` body would reach the view empty. The guard
reads such a body first when the request carries a known caller's token
(gunicorn has already de-chunked it), into memory up to
``DEFAULT_SPOOL_BYTES`` and a temporary file beyond, and hands Django the
length; without a token the answer is 401 and the body is only drained, so
nothing of a stranger's is spooled. A body over the service's largest
accepted size (``FILE_UPLOAD_MAX_BYTES`` plus ``DEFAULT_MULTIPART_OVERHEAD``,
or ``DATA_UPLOAD_MAX_MEMORY_SIZE`` if larger) is 413, read no further; so is
a body whose ``Content-Length`` declares more, before a byte of it is read.

A body the view left unread (a 413 or a 401 answered before reading it) is
read and dropped after the view, up to that same size, so the answer reaches
a client or proxy that is still sending instead of a connection reset.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application as _django_application
from django.utils.http import parse_header_parameters

from shared_core._web.errors import envelope
from shared_core._web.middleware import bearer_caller
from shared_core.context import REQUEST_ID_HEADER, new_request_id, valid_request_id
from shared_core.settings import DEFAULT_UPLOAD_MAX_BYTES

__all__ = ["get_wsgi_application"]

#: A chunked body is kept in memory up to this many bytes, then spooled to a temporary file.
DEFAULT_SPOOL_BYTES = 1024 * 1024
#: Room for multipart boundaries and part headers beside the largest file a service accepts.
DEFAULT_MULTIPART_OVERHEAD = 64 * 1024
_READ_CHUNK = 64 * 1024

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
        limit, declared = _body_limit(), environ.get("CONTENT_LENGTH") or ""
        # Only a known caller's chunked body is read ahead (into memory, then a temporary file); anyone
        # else is answered 401 by the token check without it, and its body is only drained.
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not declared
        chunked = chunked and bearer_caller(environ.get("HTTP_AUTHORIZATION", "")) is not None
        if (declared.isdigit() and int(declared) > limit) or (chunked and not _buffer_chunked_body(environ, limit)):
            return _reject(environ, start_response, "the body is larger than the service accepts", 413)
        response = handler(environ, start_response)
        _drain(environ["wsgi.input"], limit)
        return response

    return application


def _body_limit() -> int:
    largest_file = int(getattr(settings, "FILE_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES))
    return max(largest_file + DEFAULT_MULTIPART_OVERHEAD, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def _drain(body: Any, limit: int) -> None:
    # A refusal sent before the body was read (413, 401) must not be lost: gunicorn closes the connection
    # with the body unread, the kernel answers the sender's next bytes with a reset, and a proxy still
    # sending reports 502 instead of our answer. Reading the rest first, up to the limit, prevents that.
    left = limit
    while left > 0 and (chunk := body.read(min(_READ_CHUNK, left))):
        left -= len(chunk)


def _buffer_chunked_body(environ: dict[str, Any], limit: int) -> bool:
    """Read the de-chunked body and set ``CONTENT_LENGTH``; ``False`` if it is over ``limit``."""
    body = tempfile.SpooledTemporaryFile(max_size=DEFAULT_SPOOL_BYTES)  # noqa: SIM115 - it outlives this call, as wsgi.input
    size, source = 0, environ["wsgi.input"]
    while chunk := source.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            body.close()
            return False
        body.write(chunk)
    body.seek(0)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(size)
    return True


def _reject(environ: dict[str, Any], start_response: StartResponse, detail: str, status: int = 400) -> list[bytes]:
    given = environ.get("HTTP_X_REQUEST_ID")
    request_id = given if valid_request_id(given) else new_request_id()
    logger.warning("rejected %s %s before Django: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), detail)
    error = "too_large" if status == 413 else "invalid_header"
    body = json.dumps(envelope(error, detail, request_id)).encode()
    start_response(
        "413 Content Too Large" if status == 413 else "400 Bad Request",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            (REQUEST_ID_HEADER, request_id),
        ],
    )
    return [body]
