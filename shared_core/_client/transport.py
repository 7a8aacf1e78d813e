"""HTTPClient's transport: urllib3's Retry bent to the call's deadline and idempotency; watched pools; no cookies."""

from __future__ import annotations

import logging
import time
from http.cookiejar import DefaultCookiePolicy
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError, ReadTimeoutError, ResponseError
from urllib3.util.retry import Retry

from shared_core._client.deadline import Call, current_call, watched_pool_classes
from shared_core.instrumentation import RetryDetails, emit_retry

__all__ = ["IDEMPOTENT_METHODS", "DeadlineSpent", "NoCookies", "ServiceRetry", "WatchedAdapter", "set_testing"]

logger = logging.getLogger("shared_core.clients")  # the logger retries were always logged under

#: Methods retried without further proof that a repeat is harmless.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

#: Why a retry was not made when the deadline cannot cover it.
DEADLINE_REFUSAL: Final = "the deadline leaves no time for another attempt"

_testing = False


def set_testing(enabled: bool) -> None:
    """Turn backoff and Retry-After sleeps off (``True``) or on, so test suites never wait."""
    global _testing
    _testing = enabled


class DeadlineSpent(Exception):
    """Raised inside urllib3's retry loop once the budget cannot cover another attempt."""


def _may_repeat(method: str | None) -> bool:
    """Whether the current call may be sent again after the upstream may have seen it."""
    call = current_call.get()
    return call.idempotent if call is not None else (method or "").upper() in IDEMPOTENT_METHODS


class ServiceRetry(Retry):
    """Retry that respects the current call: its deadline, its idempotency, its upstream's retry budget,
    and the testing switch.

    Built on Retry's public hooks only: ``allowed_methods=None`` lets every
    method through Retry's own check, and ``is_retry`` (statuses) and
    ``increment`` (errors after the request was sent) refuse a repeat the
    call does not allow. A connect error is retried for any method, as
    urllib3 does: the upstream never saw the request. Only the statuses of
    ``status_forcelist`` are retried (urllib3 would also retry a 413 that
    carries Retry-After); a Retry-After that cannot be parsed counts as absent.

    A retry is not made when the upstream's retry budget is spent, or when the
    wait before it leaves less of the deadline than a call to that upstream
    typically takes: the caller then gets the last response (or error) at once.
    """

    #: The wait before the attempt this Retry allows, chosen by the ``increment`` that made it.
    planned_wait: float | None = None

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return (
            status_code in (self.status_forcelist or ())
            and _may_repeat(method)
            and super().is_retry(method, status_code, has_retry_after)
        )

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        call = current_call.get()
        if call is not None and call.spent() and response is None:
            raise DeadlineSpent
        # With a response, a spent deadline is refused below: urllib3 hands the response, and the connection
        # it holds, back to the caller (raising here would leave that connection to the garbage collector).
        if isinstance(error, ReadTimeoutError | ProtocolError) and not _may_repeat(method):
            raise error.with_traceback(_stacktrace)
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"status {response.status}" if response is not None else type(error).__name__
        path = urlsplit(url or "").path
        new.planned_wait = new.wait(response)  # chosen once: the jittered backoff sleep() waits is the one checked
        if call is not None:
            refusal = self._refusal(call, new.planned_wait)
            if refusal is not None:
                logger.warning("not retrying %s %s after %s: %s", method, path, cause, refusal)
                if refusal == DEADLINE_REFUSAL and response is None:
                    raise DeadlineSpent
                # With a response, urllib3 hands that response to the caller (raise_on_status is off).
                raise MaxRetryError(_pool, url, error or ResponseError(cause))  # type: ignore[arg-type]
        logger.warning("retrying %s %s after %s", method, path, cause)
        if call is not None:
            call.retries += 1
            emit_retry(RetryDetails(call.upstream, method or "", path, call.retries, cause))
        return new

    @staticmethod
    def _refusal(call: Call, wait: float) -> str | None:
        """Why the call must not be sent again after waiting ``wait`` seconds, or ``None``."""
        if not call.has_room(wait):
            return DEADLINE_REFUSAL
        if call.guard is not None and not call.guard.may_retry():
            return "the retry budget is spent"
        return None

    def wait(self, response: BaseHTTPResponse | None) -> float:
        """Seconds to wait before the next attempt: the response's Retry-After if valid, else the backoff."""
        retry_after = None
        if self.respect_retry_after_header and response is not None:
            try:
                retry_after = self.get_retry_after(response)
            except InvalidHeader:
                retry_after = None  # "soon", "1.5", "-1": as if absent
        return self.get_backoff_time() if retry_after is None else retry_after

    def sleep(self, response: Any = None) -> None:
        wait = self.wait(response) if self.planned_wait is None else self.planned_wait
        call = current_call.get()
        remaining = call.remaining() if call is not None else None
        if remaining is not None and wait >= remaining:
            raise DeadlineSpent
        if wait > 0 and not _testing:
            time.sleep(wait)


class WatchedAdapter(HTTPAdapter):
    """An adapter whose pools use connections the deadline watchdog can break."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = watched_pool_classes


class NoCookies(DefaultCookiePolicy):
    """Services authenticate with tokens; a cookie from one call must not ride along on the next."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False
