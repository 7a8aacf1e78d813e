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

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from shared_core._client_errors import (
    HTTPBulkheadFull,
    HTTPCircuitOpen,
    HTTPClientError,
    HTTPConnectionError,
    HTTPDeadlineExceeded,
    HTTPDecodeError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPUpstreamUnavailable,
    json_of,
    translate,
)
from shared_core._client_errors import outcome as outcome_of
from shared_core._deadline import Call, current_call, watchdog
from shared_core._resilience import DEFAULT_RESILIENCE, Guard, Permit, Rejected, Resilience, guard_for
from shared_core._tracing import TRACEPARENT_HEADER, get_trace
from shared_core._transport import IDEMPOTENT_METHODS, DeadlineSpent, NoCookies, ServiceRetry, WatchedAdapter
from shared_core.context import REQUEST_ID_HEADER, Deadline, get_deadline, get_request_id
from shared_core.instrumentation import CallDetails, Outcome, emit_call_end, emit_circuit_change

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

logger = logging.getLogger(__name__)

#: (connect, read) seconds for each attempt; Django setting ``HTTP_CLIENT_TIMEOUT``.
DEFAULT_TIMEOUT: Final = (3.05, 10.0)
#: Retries after the first attempt (0: none); Django setting ``HTTP_CLIENT_RETRIES``.
DEFAULT_RETRIES: Final = 3
#: Backoff before retry n is ``factor * 2 ** (n - 1)`` seconds (none before the first); ``HTTP_CLIENT_BACKOFF_FACTOR``.
DEFAULT_BACKOFF_FACTOR: Final = 0.2
#: Random seconds in [0, jitter) added to each backoff so callers do not retry in lockstep.
DEFAULT_BACKOFF_JITTER: Final = 0.1
#: Longest backoff between two attempts, in seconds.
DEFAULT_BACKOFF_MAX: Final = 5.0
#: Longest Retry-After honoured, in seconds; longer values are cut to it.
DEFAULT_RETRY_AFTER_MAX: Final = 5
#: Budget in seconds for a whole call, attempts and sleeps included; ``HTTP_CLIENT_DEADLINE``.
DEFAULT_DEADLINE: Final = 15.0
#: Connections kept per upstream host (one per gunicorn thread is enough).
DEFAULT_POOL_MAXSIZE: Final = 16

#: Statuses that are retried (Retry-After honoured on 429 and 503).
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
#: A POST or PATCH carrying this header is retried too; the server must deduplicate on it.
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"

_UNSET: Any = object()
#: ``requests.request`` arguments that shape the request itself; the rest go to ``Session.send``.
_REQUEST_FIELDS: Final = ("params", "data", "json", "files", "auth", "cookies", "hooks")


def _setting(name: str, default: Any) -> Any:
    from django.conf import settings

    return getattr(settings, name, default) if settings.configured else default


class HTTPClient:
    """A client for one upstream service.

    ``base_url``: the upstream's root, e.g. ``http://user-service:8000``; call
    paths are relative to it, and an absolute URL as a path is refused so the
    token never goes to another host.

    Each default below comes from the named Django setting when settings are
    configured, else from the module constant:

    - ``timeout`` (``HTTP_CLIENT_TIMEOUT``, ``DEFAULT_TIMEOUT``): seconds per
      attempt, a number or a (connect, read) pair; must be positive.
    - ``retries`` (``HTTP_CLIENT_RETRIES``, ``DEFAULT_RETRIES``): retries after
      the first attempt; ``0`` means one attempt only.
    - ``backoff_factor`` (``HTTP_CLIENT_BACKOFF_FACTOR``, ``DEFAULT_BACKOFF_FACTOR``):
      exponential backoff, see ``DEFAULT_BACKOFF_FACTOR``; ``0`` retries at once.
    - ``deadline`` (``HTTP_CLIENT_DEADLINE``, ``DEFAULT_DEADLINE``): seconds for
      a whole call; ``None`` leaves only the per-attempt timeouts and the
      incoming request's deadline. An incoming deadline shorter than this wins.
    - ``token``: sent as ``Authorization: Bearer <token>``; ``None`` takes
      ``SERVICE_AUTH_TOKEN``, then ``AUTH_TOKEN``; with neither, no header.
    - ``resilience`` (``HTTP_CLIENT_RESILIENCE``, else ``Resilience()``): the
      upstream's bulkhead, circuit breaker and retry budget, shared by every
      client of the same ``base_url`` and policy in this process; ``None`` turns all
      three off. A call they refuse raises ``HTTPCircuitOpen`` or
      ``HTTPBulkheadFull`` at once, without sending anything.

    One client holds one pooled session, safe to share between threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float] = _UNSET,
        retries: int = _UNSET,
        backoff_factor: float = _UNSET,
        deadline: float | None = _UNSET,
        token: str | None = None,
        retry_after_max: int = DEFAULT_RETRY_AFTER_MAX,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        resilience: Resilience | None = _UNSET,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._upstream = parts.netloc.rpartition("@")[2]  # host[:port], never credentials: a label for hooks
        self.timeout = _check_timeout(
            _setting("HTTP_CLIENT_TIMEOUT", DEFAULT_TIMEOUT) if timeout is _UNSET else timeout
        )
        self.retries = _setting("HTTP_CLIENT_RETRIES", DEFAULT_RETRIES) if retries is _UNSET else retries
        if backoff_factor is _UNSET:
            backoff_factor = _setting("HTTP_CLIENT_BACKOFF_FACTOR", DEFAULT_BACKOFF_FACTOR)
        self.deadline = _setting("HTTP_CLIENT_DEADLINE", DEFAULT_DEADLINE) if deadline is _UNSET else deadline
        if self.retries < 0 or backoff_factor < 0 or (self.deadline is not None and self.deadline <= 0):
            raise ValueError("retries and backoff_factor must be >= 0 and deadline > 0 (or None)")
        self._token = token or _setting("SERVICE_AUTH_TOKEN", None) or _setting("AUTH_TOKEN", None)
        self._session = self._make_session(backoff_factor, retry_after_max, pool_maxsize)
        if resilience is _UNSET:
            resilience = default_resilience()
        self.resilience = resilience
        self._guard: Guard | None = None
        if resilience is not None:
            self._guard = guard_for(self.base_url, self._upstream, resilience, emit_circuit_change)

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"HTTPClient({self.base_url!r}, timeout={self.timeout!r}, deadline={self.deadline!r}, token={token})"

    def _make_session(self, backoff_factor: float, retry_after_max: int, pool_maxsize: int) -> requests.Session:
        retry = ServiceRetry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            other=0,
            redirect=0,
            allowed_methods=None,  # per call, in ServiceRetry
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=DEFAULT_BACKOFF_JITTER if backoff_factor else 0.0,
            backoff_max=DEFAULT_BACKOFF_MAX,
            retry_after_max=retry_after_max,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = WatchedAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_maxsize)
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the environment
        session.cookies.set_policy(NoCookies())
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = _UNSET,
        idempotency_key: str | bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one call and return its final response, whatever its status.

        ``kwargs`` are requests' (``params``, ``json``, ``data``, ``files``,
        ``headers``, ``timeout``, ``allow_redirects``); ``stream`` is refused
        because the body must be read inside the deadline. ``deadline``
        overrides the client's for this call. ``idempotency_key``: a string to
        send as ``Idempotency-Key``, ``True`` to generate one, so a POST or
        PATCH may be retried. Raises ``HTTPConnectionError``,
        ``HTTPTimeoutError`` or ``HTTPDeadlineExceeded`` for transport failures,
        and, before anything is sent, ``HTTPCircuitOpen`` or ``HTTPBulkheadFull``
        (both ``HTTPUpstreamUnavailable``, with ``retry_after``) when the
        upstream's guard refuses the call, or ``HTTPDeadlineExceeded`` when the
        deadline leaves less than a call to this upstream typically takes.
        """
        method = method.upper()
        if kwargs.pop("stream", False):
            raise TypeError("HTTPClient reads bodies inside the deadline; stream=True is not supported")
        url = self._url(path)
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotency_key:
            headers[IDEMPOTENCY_KEY_HEADER] = uuid.uuid4().hex if idempotency_key is True else str(idempotency_key)
        request_id = get_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        trace = get_trace()
        if trace is not None and not any(k.lower() == TRACEPARENT_HEADER for k in headers):
            headers.update(trace.child().headers())  # each call is a new span of the trace; a caller's header wins
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        budget = self.deadline if deadline is _UNSET else deadline
        call_deadline = Deadline.after(budget) if budget is not None else None
        incoming = get_deadline()
        call_deadline = call_deadline.earliest(incoming) if call_deadline else incoming
        idempotent = method in IDEMPOTENT_METHODS or any(k.lower() == IDEMPOTENCY_KEY_HEADER.lower() for k in headers)
        call = Call(call_deadline, idempotent, self._upstream, self._guard)
        started = time.monotonic()
        permit = self._admit(call, method, path, started)
        outcome: Outcome = "connection_error"
        status: int | None = None
        kwargs.setdefault("timeout", self.timeout)
        token = current_call.set(call)
        watchdog.watch(call)
        try:
            response = self._session.send(self._prepare(method, url, headers, kwargs), **kwargs)
            if call.expired:  # the watchdog cut the connection; what was read may be truncated
                response.close()  # a streamed body's connection goes back to its pool, not to the collector
                raise DeadlineSpent
            status = response.status_code
            outcome = "ok" if status < 400 else "error_status"
            return response
        except DeadlineSpent:
            outcome = "deadline_exceeded"
            raise HTTPDeadlineExceeded("deadline spent", method=method, path=path) from None
        except requests.RequestException as exc:
            error = translate(exc, call, method, path)
            outcome = outcome_of(error)
            raise error from None
        finally:
            call.finish()
            current_call.reset(token)
            if permit is not None and self._guard is not None:
                failed = outcome not in ("ok", "error_status") or (status is not None and status >= 500)
                self._guard.release(permit, failed=failed, first_try=call.retries == 0)
            self._ended(call, method, path, outcome, status, started, attempts=call.retries + 1)

    def _admit(self, call: Call, method: str, path: str, started: float) -> Permit | None:
        """Let the call through the deadline and the upstream's guard, or raise what refused it (nothing sent)."""
        refusal: HTTPClientError | None = None
        if not call.has_room():
            typical = call.typical_seconds()
            usual = f" and a call to {call.upstream} takes about {typical:.3f} s" if typical is not None else ""
            detail = f"the deadline leaves {max(call.remaining() or 0.0, 0.0):.3f} s{usual}; not sent"
            refusal = HTTPDeadlineExceeded(detail, method=method, path=path)
        elif self._guard is not None:
            try:
                return self._guard.admit(wait=call.remaining())
            except Rejected as rejected:
                refusal = _refused(rejected, call.upstream, method, path)
        if refusal is None:
            return None
        self._ended(call, method, path, outcome_of(refusal), None, started, attempts=0)
        raise refusal

    def _prepare(
        self, method: str, url: str, headers: dict[str, Any], kwargs: dict[str, Any]
    ) -> requests.PreparedRequest:
        """The request as ``Session.request`` would prepare it, without merging what this session never holds.

        The session has no cookies (``NoCookies``), no auth, no params and
        ``trust_env`` off, so only its default headers are merged; skipping
        ``Session.merge_environment_settings`` and the per-call setting merges
        is most of what a call costs in Python. ``kwargs`` keeps what
        ``Session.send`` takes (``timeout``, ``allow_redirects``, ...).
        """
        merged = requests.structures.CaseInsensitiveDict(self._session.headers)
        merged.update(headers)
        request = requests.Request(
            method,
            url,
            headers={name: value for name, value in merged.items() if value is not None},
            **{name: kwargs.pop(name) for name in _REQUEST_FIELDS if name in kwargs},
        )
        return request.prepare()

    def _ended(
        self, call: Call, method: str, path: str, outcome: Outcome, status: int | None, started: float, attempts: int
    ) -> None:
        seconds = time.monotonic() - started
        emit_call_end(CallDetails(call.upstream, method, path.split("?", 1)[0], outcome, status, attempts, seconds))

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``; see ``request``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST ``path``; retried only with an ``Idempotency-Key``; see ``request``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        """PUT ``path``; see ``request``."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        """PATCH ``path``; retried only with an ``Idempotency-Key``; see ``request``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE ``path``; see ``request``."""
        return self.request("DELETE", path, **kwargs)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """GET ``path`` and return its parsed JSON (``None`` for an empty 2xx body).

        Raises ``HTTPStatusError`` for a non-2xx final status and
        ``HTTPDecodeError`` for a body that is not JSON.
        """
        return json_of(self.get(path, params=params, **kwargs), "GET", path)

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        """POST ``payload`` as the JSON body and return the parsed JSON reply; raises as ``get_json``."""
        return json_of(self.post(path, json=payload, **kwargs), "POST", path)

    def _url(self, path: str) -> str:
        if urlsplit(path).scheme or path.startswith("//"):
            raise ValueError(f"path must be relative to base_url, got {path!r}")
        return f"{self.base_url}/{path.lstrip('/')}"


def default_resilience() -> Resilience | None:
    """The policy of a client that names none: ``HTTP_CLIENT_RESILIENCE``, else ``DEFAULT_RESILIENCE``."""
    policy: Resilience | None = _setting("HTTP_CLIENT_RESILIENCE", DEFAULT_RESILIENCE)
    return policy


def _refused(rejected: Rejected, upstream: str, method: str, path: str) -> HTTPUpstreamUnavailable:
    if rejected.reason == "circuit_open":
        detail = f"the circuit to {upstream} is open; not sent"
        return HTTPCircuitOpen(detail, method=method, path=path, retry_after=rejected.retry_after)
    detail = f"{upstream} already has as many calls from this process as it may; not sent"
    return HTTPBulkheadFull(detail, method=method, path=path, retry_after=rejected.retry_after)


def _check_timeout(value: Any) -> float | tuple[float, float]:
    values = value if isinstance(value, tuple | list) else (value,)
    if len(values) not in (1, 2) or not all(isinstance(v, int | float) and v > 0 for v in values):
        raise ValueError(f"timeout must be a positive number or a (connect, read) pair, got {value!r}")
    return (float(values[0]), float(values[1])) if len(values) == 2 else float(values[0])


from shared_core._upstreams import upstream  # noqa: E402 - it builds on HTTPClient above
