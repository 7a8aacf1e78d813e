"""HTTPClient's errors, and the translation of requests' and urllib3's into them (messages carry no secrets)."""

from __future__ import annotations

from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from shared_core._client.deadline import Call
from shared_core.instrumentation import Outcome

__all__ = [
    "HTTPBulkheadFull",
    "HTTPCircuitOpen",
    "HTTPClientError",
    "HTTPConnectionError",
    "HTTPDeadlineExceeded",
    "HTTPDecodeError",
    "HTTPStatusError",
    "HTTPTimeoutError",
    "HTTPUpstreamUnavailable",
    "json_of",
    "outcome",
    "translate",
]


class HTTPClientError(Exception):
    """Base of every error HTTPClient raises; ``method`` and ``path`` say which call failed, ``detail`` how."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.method = method
        self.path = path
        self.detail = message


class HTTPConnectionError(HTTPClientError):
    """The upstream could not be reached, or broke the connection (refused, reset, DNS)."""


class HTTPUpstreamUnavailable(HTTPConnectionError):
    """The call was not sent: the upstream is known to be sick (``HTTPCircuitOpen``) or has as many calls
    from this process as it may (``HTTPBulkheadFull``). ``retry_after``: seconds until a call may go
    through again. Services answer it 503 ``upstream_unavailable`` with that ``Retry-After``."""

    def __init__(self, message: str, *, method: str, path: str, retry_after: float) -> None:
        super().__init__(message, method=method, path=path)
        self.retry_after = retry_after


class HTTPCircuitOpen(HTTPUpstreamUnavailable):
    """The upstream's circuit is open (or half-open with its probes out): the call fails at once."""


class HTTPBulkheadFull(HTTPUpstreamUnavailable):
    """This process already has as many calls in flight to the upstream as it allows."""


class HTTPTimeoutError(HTTPClientError):
    """An attempt timed out connecting or waiting for the upstream."""


class HTTPDeadlineExceeded(HTTPTimeoutError):
    """The call's overall deadline was spent, whatever the upstream was doing."""


class HTTPStatusError(HTTPClientError):
    """The final response had a non-2xx status (raised by ``get_json`` and ``post_json``)."""

    def __init__(self, message: str, *, method: str, path: str, response: requests.Response) -> None:
        super().__init__(message, method=method, path=path)
        self.response = response
        self.status_code = response.status_code


class HTTPDecodeError(HTTPClientError):
    """A 2xx response whose body is not JSON."""


def _reason(exc: BaseException) -> BaseException:
    """The innermost urllib3 reason behind a requests exception."""
    seen = exc
    for _ in range(5):
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args else None)
        if not isinstance(inner, BaseException):
            break
        seen = inner
    return seen


def translate(exc: requests.RequestException, call: Call, method: str, path: str) -> HTTPClientError:
    """Map a requests exception onto HTTPClientError, with a message that carries no secrets."""
    if call.expired:
        return HTTPDeadlineExceeded("deadline spent while waiting for the upstream", method=method, path=path)
    reason = _reason(exc)
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so it must be tested first.
    if isinstance(reason, NewConnectionError):
        return HTTPConnectionError("could not connect (refused or unreachable)", method=method, path=path)
    if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, ConnectTimeoutError):
        return HTTPTimeoutError("timed out connecting", method=method, path=path)
    if isinstance(exc, requests.Timeout) or isinstance(reason, ReadTimeoutError):
        return HTTPTimeoutError("timed out waiting for a response", method=method, path=path)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return HTTPConnectionError("connection failed or broke", method=method, path=path)
    return HTTPClientError(f"request failed ({type(exc).__name__})", method=method, path=path)


def outcome(error: HTTPClientError) -> Outcome:
    if isinstance(error, HTTPCircuitOpen):
        return "circuit_open"
    if isinstance(error, HTTPBulkheadFull):
        return "bulkhead_full"
    if isinstance(error, HTTPDeadlineExceeded):
        return "deadline_exceeded"
    return "timeout" if isinstance(error, HTTPTimeoutError) else "connection_error"


def json_of(response: requests.Response, method: str, path: str) -> Any:
    if not 200 <= response.status_code < 300:
        raise HTTPStatusError(f"status {response.status_code}", method=method, path=path, response=response)
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise HTTPDecodeError(f"status {response.status_code} body is not JSON", method=method, path=path) from None
