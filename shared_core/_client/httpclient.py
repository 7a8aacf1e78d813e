"""HTTPClient itself; ``shared_core.clients`` is its public module (see there for the contract)."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from shared_core._base.tracing import TRACEPARENT_HEADER, get_trace
from shared_core._base.wire import IDEMPOTENCY_KEY_HEADER
from shared_core._client.deadline import Call, current_call, watchdog
from shared_core._client.errors import (
    HTTPBulkheadFull,
    HTTPCircuitOpen,
    HTTPClientError,
    HTTPDeadlineExceeded,
    HTTPUpstreamUnavailable,
    json_of,
    outcome as outcome_of,
    translate,
)
from shared_core._client.resilience import DEFAULT_RESILIENCE, Guard, Permit, Rejected, Resilience, guard_for
from shared_core._client.transport import IDEMPOTENT_METHODS, DeadlineSpent, NoCookies, ServiceRetry, WatchedAdapter
from shared_core.context import REQUEST_ID_HEADER, Deadline, get_deadline, get_request_id
from shared_core.instrumentation import CallDetails, Outcome, emit_call_end, emit_circuit_change

__all__ = [
    "DEFAULT",
    "DEFAULT_BACKOFF_FACTOR",
    "DEFAULT_BACKOFF_JITTER",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_DEADLINE",
    "DEFAULT_POOL_MAXSIZE",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_AFTER_MAX",
    "DEFAULT_TIMEOUT",
    "RETRY_STATUSES",
    "ClientConfig",
    "HTTPClient",
    "default_resilience",
]

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

#: ``requests.request`` arguments that shape the request itself; the rest go to ``Session.send``.
_REQUEST_FIELDS: Final = ("headers", "params", "data", "json", "files", "auth", "cookies", "hooks")


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"


#: An argument not given: the Django setting named in the docstring fills it, else the ``DEFAULT_*`` constant.
DEFAULT: Final = _Default.DEFAULT


def _setting(name: str, default: Any) -> Any:
    from django.conf import settings

    return getattr(settings, name, default) if settings.configured else default


def _given(value: Any, name: str, default: Any) -> Any:
    """``value``, unless it is ``DEFAULT``: then the Django setting ``name``, else ``default``."""
    return _setting(name, default) if value is DEFAULT else value


@dataclass(frozen=True)
class ClientConfig:
    """One client's configuration, resolved once: its arguments, else the Django settings, else the defaults."""

    timeout: float | tuple[float, float]
    retries: int
    backoff_factor: float
    deadline: float | None
    token: str | None
    retry_after_max: int
    pool_maxsize: int
    resilience: Resilience | None

    @classmethod
    def resolve(
        cls,
        *,
        timeout: float | tuple[float, float] | _Default,
        retries: int | _Default,
        backoff_factor: float | _Default,
        deadline: float | _Default | None,
        token: str | None,
        retry_after_max: int,
        pool_maxsize: int,
        resilience: Resilience | _Default | None,
    ) -> ClientConfig:
        """The configuration these arguments ask for; ``ValueError`` names a value out of range."""
        config = cls(
            timeout=_check_timeout(_given(timeout, "HTTP_CLIENT_TIMEOUT", DEFAULT_TIMEOUT)),
            retries=_given(retries, "HTTP_CLIENT_RETRIES", DEFAULT_RETRIES),
            backoff_factor=_given(backoff_factor, "HTTP_CLIENT_BACKOFF_FACTOR", DEFAULT_BACKOFF_FACTOR),
            deadline=_given(deadline, "HTTP_CLIENT_DEADLINE", DEFAULT_DEADLINE),
            token=token or _setting("SERVICE_AUTH_TOKEN", None) or _setting("AUTH_TOKEN", None),
            retry_after_max=retry_after_max,
            pool_maxsize=pool_maxsize,
            resilience=default_resilience() if resilience is DEFAULT else resilience,
        )
        if config.retries < 0 or config.backoff_factor < 0 or (config.deadline is not None and config.deadline <= 0):
            raise ValueError("retries and backoff_factor must be >= 0 and deadline > 0 (or None)")
        return config


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
        timeout: float | tuple[float, float] | _Default = DEFAULT,
        retries: int | _Default = DEFAULT,
        backoff_factor: float | _Default = DEFAULT,
        deadline: float | _Default | None = DEFAULT,
        token: str | None = None,
        retry_after_max: int = DEFAULT_RETRY_AFTER_MAX,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        resilience: Resilience | _Default | None = DEFAULT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._upstream = parts.netloc.rpartition("@")[2]  # host[:port], never credentials: a label for hooks
        self.config = ClientConfig.resolve(
            timeout=timeout,
            retries=retries,
            backoff_factor=backoff_factor,
            deadline=deadline,
            token=token,
            retry_after_max=retry_after_max,
            pool_maxsize=pool_maxsize,
            resilience=resilience,
        )
        self._session = _session(self.config)
        self._guard: Guard | None = None
        if self.config.resilience is not None:
            self._guard = guard_for(self.base_url, self._upstream, self.config.resilience, emit_circuit_change)

    @property
    def timeout(self) -> float | tuple[float, float]:
        """Seconds per attempt: one number, or (connect, read)."""
        return self.config.timeout

    @property
    def retries(self) -> int:
        """Retries after the first attempt."""
        return self.config.retries

    @property
    def deadline(self) -> float | None:
        """Seconds for a whole call (``None``: only the attempts' timeouts and an incoming deadline bound it)."""
        return self.config.deadline

    @property
    def resilience(self) -> Resilience | None:
        """The upstream's bulkhead, breaker and retry budget (``None``: all three off)."""
        return self.config.resilience

    def __repr__(self) -> str:
        token = "set" if self.config.token else "none"
        return f"HTTPClient({self.base_url!r}, timeout={self.timeout!r}, deadline={self.deadline!r}, token={token})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: float | _Default | None = DEFAULT,
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
        fields, options = _split(kwargs)
        headers = self._headers(fields.pop("headers", None), idempotency_key)
        prepared = self._prepare(method, self._url(path), headers, fields)
        options.setdefault("timeout", self.timeout)
        call = Call(self._deadline(deadline), _idempotent(method, headers), self._upstream, self._guard)
        started = time.monotonic()
        permit = self._admit(call, method, path, started)
        outcome: Outcome = "connection_error"
        status: int | None = None
        try:
            response = self._send(call, prepared, options, method, path)
            status = response.status_code
            outcome = "ok" if status < 400 else "error_status"
            return response
        except HTTPClientError as error:
            outcome = outcome_of(error)
            raise
        finally:
            if permit is not None and self._guard is not None:
                failed = outcome not in ("ok", "error_status") or (status is not None and status >= 500)
                self._guard.release(permit, failed=failed, first_try=call.retries == 0)
            self._ended(call, method, path, outcome, status, started, attempts=call.retries + 1)

    def _headers(self, given: Mapping[str, Any] | None, idempotency_key: str | bool | None) -> dict[str, Any]:
        """The caller's headers (a copy), with the idempotency key, request id, trace and token added."""
        headers = dict(given or {})
        if idempotency_key:
            headers[IDEMPOTENCY_KEY_HEADER] = uuid.uuid4().hex if idempotency_key is True else str(idempotency_key)
        request_id = get_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        trace = get_trace()
        if trace is not None and not any(k.lower() == TRACEPARENT_HEADER for k in headers):
            headers.update(trace.child().headers())  # each call is a new span of the trace; a caller's header wins
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return headers

    def _deadline(self, deadline: float | _Default | None) -> Deadline | None:
        """This call's deadline: its own budget (else the client's), or the incoming request's if that is sooner."""
        budget = self.deadline if deadline is DEFAULT else deadline
        own = Deadline.after(budget) if budget is not None else None
        incoming = get_deadline()
        return own.earliest(incoming) if own else incoming

    def _send(
        self, call: Call, prepared: requests.PreparedRequest, options: dict[str, Any], method: str, path: str
    ) -> requests.Response:
        """Send ``prepared`` under the deadline watchdog; transport failures become ``HTTPClientError`` here."""
        token = current_call.set(call)
        watchdog.watch(call)
        try:
            response = self._session.send(prepared, **options)
            if call.expired:  # the watchdog cut the connection; what was read may be truncated
                response.close()  # a streamed body's connection goes back to its pool, not to the collector
                raise DeadlineSpent
            return response
        except DeadlineSpent:
            raise HTTPDeadlineExceeded("deadline spent", method=method, path=path) from None
        except requests.RequestException as exc:
            raise translate(exc, call, method, path) from None
        finally:
            call.finish()
            current_call.reset(token)

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
        self, method: str, url: str, headers: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> requests.PreparedRequest:
        """The request as ``Session.request`` would prepare it, without merging what this session never holds.

        The session has no cookies (``NoCookies``), no auth, no params and
        ``trust_env`` off, so only its default headers are merged; skipping
        ``Session.merge_environment_settings`` and the per-call setting merges
        is most of what a call costs in Python. ``fields`` are ``requests.Request``'s.
        """
        merged = requests.structures.CaseInsensitiveDict(self._session.headers)
        merged.update(headers)
        kept = {name: value for name, value in merged.items() if value is not None}
        return requests.Request(method, url, headers=kept, **fields).prepare()

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


def _session(config: ClientConfig) -> requests.Session:
    """A pooled session that retries as ``config`` says, keeps no cookies and reads nothing from the environment."""
    retry = ServiceRetry(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        status=config.retries,
        other=0,
        redirect=0,
        allowed_methods=None,  # per call, in ServiceRetry
        status_forcelist=RETRY_STATUSES,
        backoff_factor=config.backoff_factor,
        backoff_jitter=DEFAULT_BACKOFF_JITTER if config.backoff_factor else 0.0,
        backoff_max=DEFAULT_BACKOFF_MAX,
        retry_after_max=config.retry_after_max,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = WatchedAdapter(max_retries=retry, pool_connections=1, pool_maxsize=config.pool_maxsize)
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    session.cookies.set_policy(NoCookies())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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


def _split(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` as two new dicts: ``requests.Request``'s fields, ``Session.send``'s options (no ``stream``)."""
    if kwargs.get("stream"):
        raise TypeError("HTTPClient reads bodies inside the deadline; stream=True is not supported")
    fields = {name: value for name, value in kwargs.items() if name in _REQUEST_FIELDS}
    options = {name: value for name, value in kwargs.items() if name not in _REQUEST_FIELDS and name != "stream"}
    return fields, options


def _idempotent(method: str, headers: Mapping[str, Any]) -> bool:
    """Whether a call may be retried: an idempotent method, or one that carries an ``Idempotency-Key``."""
    return method in IDEMPOTENT_METHODS or any(k.lower() == IDEMPOTENCY_KEY_HEADER.lower() for k in headers)


def _check_timeout(value: Any) -> float | tuple[float, float]:
    values = value if isinstance(value, tuple | list) else (value,)
    if len(values) not in (1, 2) or not all(isinstance(v, int | float) and v > 0 for v in values):
        raise ValueError(f"timeout must be a positive number or a (connect, read) pair, got {value!r}")
    return (float(values[0]), float(values[1])) if len(values) == 2 else float(values[0])
