"""HTTPClient: calls between services that retry safely inside one deadline.

Built on a pooled ``requests.Session`` and ``urllib3.util.retry.Retry``, plus
what those lack: an overall deadline that holds whatever the upstream does,
POST/PATCH retried only with an ``Idempotency-Key``, the request id, the
trace (W3C ``traceparent``, a new span per call) and the remaining budget
sent downstream, and errors that never name the token.

Callers catch ``HTTPClientError`` and its subclasses only; no requests or
urllib3 exception leaves this module.
"""

from __future__ import annotations

from shared_core._client.errors import (
    HTTPBulkheadFull,
    HTTPCircuitOpen,
    HTTPClientError,
    HTTPConnectionError,
    HTTPDeadlineExceeded,
    HTTPDecodeError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPUpstreamUnavailable,
)
from shared_core._client.httpclient import HTTPClient
from shared_core._client.resilience import Resilience
from shared_core._client.upstreams import upstream

__all__ = [
    "HTTPBulkheadFull",
    "HTTPCircuitOpen",
    "HTTPClient",
    "HTTPClientError",
    "HTTPConnectionError",
    "HTTPDeadlineExceeded",
    "HTTPDecodeError",
    "HTTPStatusError",
    "HTTPTimeoutError",
    "HTTPUpstreamUnavailable",
    "Resilience",
    "upstream",
]
