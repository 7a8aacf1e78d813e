"""Prometheus metrics of every service, with prometheus-client (README: Metrics).

``service_settings`` turns them on (``METRICS_ENABLED``, default on): it puts
``MetricsMiddleware`` first in ``MIDDLEWARE``, and shared_core's app installs
``CLIENT_METRICS`` as an HTTPClient hook and, where the outbox is on, records
each delivery. Nothing else is needed in a service.

``GET /metrics`` on the service's own port answers in Prometheus' text
format, without the service token: it is meant for a scraper on the internal
network, and the edge proxy refuses the path. Under gunicorn the start script
sets ``PROMETHEUS_MULTIPROC_DIR`` (on the /tmp tmpfs), so every worker
process writes its values there and a scrape, whichever process answers it,
adds them all up (prometheus-client's multiprocess mode); the files of dead
workers are folded into archive files (shared_core.multiprocess), so the
directory stays bounded. Without it, as in tests, the values live in the process.

Labels never hold an id: a request is labelled with its route template
(``/api/tickets/{ticket_id}/``, not the path), an unknown path with
``UNMATCHED_ROUTE``, an unknown method with ``other``, and a status with its
class (``2xx``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, nullcontext
from functools import lru_cache
from typing import Any, Final

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared_core.instrumentation import CallDetails, RetryDetails
from shared_core.middleware import json_error
from shared_core.multiprocess import locked

__all__ = [
    "CLIENT_METRICS",
    "DEFAULT_LATENCY_BUCKETS",
    "DEFAULT_QUERY_BUCKETS",
    "METRICS_PATH",
    "UNMATCHED_ROUTE",
    "ClientMetrics",
    "MetricsMiddleware",
    "OutboxCollector",
    "exposition",
    "observe_delivery",
    "route_of",
    "serve",
]

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

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_LABELS: Final = ("route", "method", "status")
_CONVERTER: Final = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

HTTP_REQUESTS = Counter("http_server_requests", "HTTP requests served.", _REQUEST_LABELS)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds", "Time to serve a request.", _REQUEST_LABELS, buckets=DEFAULT_LATENCY_BUCKETS
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
OUTBOX_DELIVERY = Histogram(
    "outbox_delivery_latency_seconds",
    "Time from a task's enqueue (its transaction's commit) to its successful delivery.",
    ["queue"],
    buckets=DEFAULT_DELIVERY_BUCKETS,
)
OUTBOX_RUNS = Counter("outbox_task_runs", "Outbox task runs, by the state each left its task in.", ["queue", "status"])


def route_of(request: HttpRequest) -> str:
    """The route template a request matched, ``/api/tickets/{ticket_id}/``, or ``UNMATCHED_ROUTE``."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return _template(match.route)


@lru_cache(maxsize=1024)
def _template(route: str) -> str:
    """Django's ``api/tickets/<uuid:ticket_id>/`` as ``/api/tickets/{ticket_id}/``."""
    return "/" + _CONVERTER.sub(r"{\1}", route.lstrip("^"))


class _QueryTimer:
    """An execute wrapper that counts a request's queries and their time."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


class MetricsMiddleware:
    """Counts and times every request, and answers ``GET /metrics``. Put it first in ``MIDDLEWARE``.

    Being first, it times the whole stack below it, and serves ``/metrics``
    before the token check. Metrics of the scrapes themselves are not kept.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}
        self._outbox = OutboxCollector.configured()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == METRICS_PATH:
            return self._serve(request)
        timer = _QueryTimer()
        started = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
        try:
            with ExitStack() as stack:
                for alias in connections:
                    stack.enter_context(connections[alias].execute_wrapper(timer))
                response = self.get_response(request)
        finally:
            HTTP_IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        key = (route, method or "other", f"{response.status_code // 100}xx")
        children = self._children.get(key)
        if children is None:  # labels() validates and locks: once per label set, not per request
            children = self._children[key] = (
                HTTP_REQUESTS.labels(*key),
                HTTP_DURATION.labels(*key),
                DB_QUERIES.labels(route),
                DB_DURATION.labels(route),
            )
        requests, duration, queries, query_time = children
        requests.inc()
        duration.observe(elapsed)
        queries.observe(timer.count)
        query_time.observe(timer.seconds)
        return response

    def _serve(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            refused = json_error(405, "method_not_allowed", "use one of GET, HEAD")
            refused["Allow"] = "GET, HEAD"
            return refused
        body = exposition(*filter(None, [self._outbox]))
        return HttpResponse(b"" if request.method == "HEAD" else body, content_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """All processes' values in multiprocess mode (``settings.METRICS_MULTIPROC_DIR``), else this process's."""
    directory = getattr(settings, "METRICS_MULTIPROC_DIR", None)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def exposition(*extra: Collector) -> bytes:
    """Every metric of this service in the text format, plus those of the ``extra`` collectors.

    In multiprocess mode the files are read under the directory's shared lock (shared_core.multiprocess), so
    a dead worker's files folded into the archive meanwhile are counted exactly once.
    """
    directory = getattr(settings, "METRICS_MULTIPROC_DIR", None)
    with locked(directory) if directory else nullcontext():
        body = generate_latest(_registry())
    if extra:
        own = CollectorRegistry(auto_describe=False)
        for collector in extra:
            own.register(collector)
        body += generate_latest(own)
    return body


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a container's port, on its own network
    """Serve the metrics on ``port`` from a background thread, for a process with no HTTP server (the outbox worker).

    Raises ``OSError`` when the port cannot be bound.
    """
    start_http_server(port, addr, registry=_registry())


class ClientMetrics:
    """The HTTPClient hook behind the ``http_client_*`` metrics (shared_core.instrumentation)."""

    def on_retry(self, details: RetryDetails) -> None:
        CLIENT_RETRIES.labels(details.upstream).inc()

    def on_call_end(self, details: CallDetails) -> None:
        CLIENT_CALLS.labels(details.upstream, details.outcome).inc()
        CLIENT_ATTEMPTS.labels(details.upstream).inc(details.attempts)
        CLIENT_DURATION.labels(details.upstream).observe(details.seconds)
        if details.outcome == "deadline_exceeded":
            CLIENT_DEADLINE_EXCEEDED.labels(details.upstream).inc()


#: The hook shared_core's app installs when metrics are on.
CLIENT_METRICS: Final = ClientMetrics()


class OutboxCollector(Collector):
    """``outbox_tasks{queue,state}``: ready, scheduled, running and failed tasks, read from the database per scrape.

    Read at scrape time, not counted in a process: the queue lives in the
    database, which every replica and worker shares. A scrape while the
    database is down leaves the family out rather than failing.
    """

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = tuple(queues)

    @classmethod
    def configured(cls) -> OutboxCollector | None:
        """A collector for the queues of ``settings.TASKS``, or ``None`` where the outbox is off."""
        backend = getattr(settings, "TASKS", {}).get("default", {})
        if backend.get("BACKEND") != "shared_core.outbox.OutboxBackend":
            return None
        return cls(backend.get("QUEUES", ()))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from shared_core.outbox.worker import outbox_stats  # its models load only where the outbox is on

        try:
            stats = {s.queue: s for s in outbox_stats()}
        except DatabaseError:
            return
        family = GaugeMetricFamily("outbox_tasks", "Outbox tasks by state.", labels=["queue", "state"])
        for queue in sorted({*self.queues, *stats}):
            found = stats.get(queue)
            for state in ("ready", "scheduled", "running", "failed"):
                family.add_metric([queue, state], getattr(found, state) if found else 0)
        yield family


def observe_delivery(sender: object, task_result: Any, **_: object) -> None:
    """``task_finished`` receiver: one run's outcome, and the delivery latency of a task delivered."""
    status = str(getattr(task_result.status, "value", task_result.status)).lower()
    OUTBOX_RUNS.labels(task_result.task.queue_name, status).inc()
    if status == "successful" and task_result.finished_at and task_result.enqueued_at:
        latency = (task_result.finished_at - task_result.enqueued_at).total_seconds()
        OUTBOX_DELIVERY.labels(task_result.task.queue_name).observe(max(0.0, latency))
