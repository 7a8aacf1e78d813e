"""HTTPClient's calls as metrics: the hook shared_core's app installs among HTTPClient's hooks."""

from __future__ import annotations

from typing import Final

from shared_core._client.resilience import STATES
from shared_core._ops.metrics.families import (
    CLIENT_ATTEMPTS,
    CLIENT_CALLS,
    CLIENT_CIRCUIT_STATE,
    CLIENT_CIRCUIT_TRANSITIONS,
    CLIENT_DEADLINE_EXCEEDED,
    CLIENT_DURATION,
    CLIENT_REFUSED,
    CLIENT_RETRIES,
)
from shared_core.instrumentation import REFUSED_OUTCOMES, CallDetails, CircuitDetails, RetryDetails


class ClientMetrics:
    """The HTTPClient hook behind the ``http_client_*`` metrics (shared_core.instrumentation)."""

    def on_retry(self, details: RetryDetails) -> None:
        CLIENT_RETRIES.labels(details.upstream).inc()

    def on_call_end(self, details: CallDetails) -> None:
        CLIENT_CALLS.labels(details.upstream, details.outcome).inc()
        if details.outcome in REFUSED_OUTCOMES:
            CLIENT_REFUSED.labels(details.upstream, details.outcome).inc()
            return
        CLIENT_ATTEMPTS.labels(details.upstream).inc(details.attempts)
        CLIENT_DURATION.labels(details.upstream).observe(details.seconds)
        if details.outcome == "deadline_exceeded":
            CLIENT_DEADLINE_EXCEEDED.labels(details.upstream).inc()

    def on_circuit_change(self, details: CircuitDetails) -> None:
        CLIENT_CIRCUIT_STATE.labels(details.upstream).set(STATES.index(details.after))
        CLIENT_CIRCUIT_TRANSITIONS.labels(details.upstream, details.after).inc()


#: The hook shared_core's app installs when metrics are on.
CLIENT_METRICS: Final = ClientMetrics()
