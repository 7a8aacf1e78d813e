"""Prometheus metrics across containers: exact counts after a scripted flow, summed over gunicorn's processes."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import LOG_WITHIN, eventually

pytestmark = pytest.mark.docker

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(stack, service: str) -> Samples:
    """``service``'s /metrics from its own port, with no token, as a scraper on the network would read it."""
    response = requests.get(stack.url(service) + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_two_503s_then_success_move_the_counters_by_exactly_the_calls_made(stack, upstream):
    """Retries +2, attempts +3 and one ok call; requests counted exactly per route, across both gunicorn
    workers (each call on a new connection); no label holds an id."""
    requester = str(uuid.uuid4())
    upstream.script(
        f"/t/api/users/{requester}/", {"status": 503}, {"status": 503}, {"status": 200, "body": {"id": requester}}
    )
    before = scrape(stack, "ticket-chaos")
    created = stack.call("POST", "ticket-chaos", "/api/tickets/", json={"title": "t", "requester_id": requester})
    assert created.status_code == 201, created.text
    ticket = created.json()["id"]
    reads = 7
    for _ in range(reads):
        assert stack.call("GET", "ticket-chaos", f"/api/tickets/{ticket}/").status_code == 200
    assert stack.call("GET", "ticket-chaos", f"/api/tickets/{uuid.uuid4()}/").status_code == 404
    after = scrape(stack, "ticket-chaos")

    assert len(upstream.seen(f"/t/api/users/{requester}/")) == 3
    assert moved(before, after, "http_client_retries_total", upstream="upstream:8000") == 2
    assert moved(before, after, "http_client_attempts_total", upstream="upstream:8000") == 3
    assert moved(before, after, "http_client_calls_total", upstream="upstream:8000", outcome="ok") == 1
    assert moved(before, after, "http_client_deadline_exceeded_total", upstream="upstream:8000") == 0
    created_labels = {"route": "/api/tickets/", "method": "POST", "status": "2xx"}
    assert moved(before, after, "http_server_requests_total", **created_labels) == 1
    read = {"route": "/api/tickets/{ticket_id}/", "method": "GET"}
    assert moved(before, after, "http_server_requests_total", **read, status="2xx") == reads
    assert moved(before, after, "http_server_requests_total", **read, status="4xx") == 1
    assert moved(before, after, "http_server_request_duration_seconds_count", **read, status="2xx") == reads
    assert moved(before, after, "http_server_request_db_queries_count", route=read["route"]) == reads + 1
    assert ("http_server_requests_in_flight", frozenset()) in after
    labels = {value for _, label_set in after for _, value in label_set}
    assert not [value for value in labels if UUID.search(value) or ticket in value or requester in value]


def test_the_worker_reports_the_delivery_and_the_service_the_queue(stack, upstream):
    """The delivery of a new ticket's notification shows in the worker's metrics; the service's queue gauges
    agree with `outbox status`."""
    requester = str(uuid.uuid4())
    upstream.script(f"/t/api/users/{requester}/", {"status": 200, "body": {"id": requester}})
    before = scrape(stack, "ticket-chaos-worker")
    created = stack.call("POST", "ticket-chaos", "/api/tickets/", json={"title": "t", "requester_id": requester})
    assert created.status_code == 201, created.text

    def delivered() -> Samples | None:
        after = scrape(stack, "ticket-chaos-worker")
        count = moved(before, after, "outbox_delivery_latency_seconds_count", queue="notifications")
        return after if count else None

    after = eventually(delivered, LOG_WITHIN, "the notification's delivery in the worker's metrics")
    assert moved(before, after, "outbox_delivery_latency_seconds_count", queue="notifications") == 1
    assert moved(before, after, "outbox_task_runs_total", queue="notifications", status="successful") == 1
    assert moved(before, after, "outbox_delivery_latency_seconds_sum", queue="notifications") > 0
    eventually(lambda: stack.idle("ticket-chaos"), LOG_WITHIN, "ticket-chaos's outbox idle", stack.outbox)
    gauges = scrape(stack, "ticket-chaos")
    status = stack.outbox("ticket-chaos")
    for state in ("ready", "scheduled", "running", "failed"):
        queues = ("notifications", "attachments")
        assert (
            sum(gauges[("outbox_tasks", frozenset({("queue", q), ("state", state)}))] for q in queues) == status[state]
        )


def test_the_public_edge_never_serves_metrics(stack):
    """GET /metrics through the proxy is its JSON 404, token or not; the service's own port serves them."""
    for headers in ({}, stack.auth):
        refused = requests.get(stack.url("ticket-service") + "/metrics", headers=headers, timeout=10)
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"
        assert "http_server_requests" not in refused.text
    scrape_inside = (
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    )
    served = stack.container("ticket-service").exec_run(["python3", "-c", scrape_inside])
    assert served.exit_code == 0 and "http_server_requests_total" in served.output.decode()
