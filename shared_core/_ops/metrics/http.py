"""The server side: every request counted and timed by route template, and ``GET /metrics`` answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import lru_cache
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST

from shared_core._ops.metrics.exposition import exposition
from shared_core._ops.metrics.families import (
    CONVERTER,
    DB_DURATION,
    DB_QUERIES,
    HTTP_DURATION,
    HTTP_IN_FLIGHT,
    HTTP_REQUESTS,
    METHODS,
    METRICS_PATH,
    UNMATCHED_ROUTE,
)
from shared_core._ops.metrics.outbox import OutboxCollector
from shared_core._web.errors import json_error


def route_of(request: HttpRequest) -> str:
    """The route template a request matched, ``/api/tickets/{ticket_id}/``, or ``UNMATCHED_ROUTE``."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return _template(match.route)


@lru_cache(maxsize=1024)
def _template(route: str) -> str:
    """Django's ``api/tickets/<uuid:ticket_id>/`` as ``/api/tickets/{ticket_id}/``."""
    return "/" + CONVERTER.sub(r"{\1}", route.lstrip("^"))


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
        method = request.method if request.method in METHODS else "other"
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
