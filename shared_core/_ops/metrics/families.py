"""The metric families every service exports, and their buckets; their values live in prometheus-client."""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

#: Where every service serves its metrics, on its own port.
METRICS_PATH: Final = "/metrics"
#: The route label of a request that matched no URL pattern (a 404 before any view).
UNMATCHED_ROUTE: Final = "<unmatched>"
#: Seconds: from a cache hit to a call that waits out its deadline.
DEFAULT_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Database queries in one request.
DEFAULT_QUERY_BUCKETS: Final = (0, 1, 2, 3, 5, 10, 20, 50, 100)
#: Seconds from enqueue to delivery: immediate, or after retries backed off up to minutes.
DEFAULT_DELIVERY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: Methods labelled by name; any other is ``other``.
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The labels of the request families.
REQUEST_LABELS: Final = ("route", "method", "status")
#: A path converter in a Django route: ``<uuid:ticket_id>``.
CONVERTER: Final = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

HTTP_REQUESTS = Counter("http_server_requests", "HTTP requests served.", REQUEST_LABELS)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds", "Time to serve a request.", REQUEST_LABELS, buckets=DEFAULT_LATENCY_BUCKETS
)
HTTP_IN_FLIGHT = Gauge("http_server_requests_in_flight", "Requests being served.", multiprocess_mode="livesum")
DB_QUERIES = Histogram(
    "http_server_request_db_queries", "Database queries per request.", ["route"], buckets=DEFAULT_QUERY_BUCKETS
)
DB_DURATION = Histogram(
    "http_server_request_db_duration_seconds",
    "Time per request spent in database queries.",
    ["route"],
    buckets=DEFAULT_LATENCY_BUCKETS,
)
CLIENT_CALLS = Counter("http_client_calls", "HTTPClient calls, by how they ended.", ["upstream", "outcome"])
CLIENT_DURATION = Histogram(
    "http_client_call_duration_seconds",
    "Time of a whole HTTPClient call, retries and backoff included.",
    ["upstream"],
    buckets=DEFAULT_LATENCY_BUCKETS,
)
CLIENT_ATTEMPTS = Counter("http_client_attempts", "Requests HTTPClient sent, first tries and retries.", ["upstream"])
CLIENT_RETRIES = Counter("http_client_retries", "Requests HTTPClient sent again.", ["upstream"])
CLIENT_DEADLINE_EXCEEDED = Counter(
    "http_client_deadline_exceeded", "HTTPClient calls that ran out of their deadline.", ["upstream"]
)
CLIENT_REFUSED = Counter(
    "http_client_refused_calls",
    "HTTPClient calls refused before sending: the upstream's circuit was open or its bulkhead full.",
    ["upstream", "reason"],
)
CLIENT_CIRCUIT_STATE = Gauge(
    "http_client_circuit_state",
    "The upstream's circuit breaker: 0 closed, 1 half-open, 2 open (the worst of the live processes).",
    ["upstream"],
    multiprocess_mode="livemax",
)
CLIENT_CIRCUIT_TRANSITIONS = Counter(
    "http_client_circuit_transitions", "Changes of state of the upstream's circuit breaker.", ["upstream", "state"]
)
OUTBOX_DELIVERY = Histogram(
    "outbox_delivery_latency_seconds",
    "Time from a task's enqueue (its transaction's commit) to its successful delivery.",
    ["queue"],
    buckets=DEFAULT_DELIVERY_BUCKETS,
)
OUTBOX_RUNS = Counter("outbox_task_runs", "Outbox task runs, by the state each left its task in.", ["queue", "status"])
