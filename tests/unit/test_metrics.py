"""Prometheus metrics on real Django requests, real HTTPClient calls and real outbox tasks, read back by the
client library's own text parser."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from shared_core._ops.metrics import CLIENT_METRICS, OutboxCollector, exposition, route_of
from shared_core.clients import HTTPCircuitOpen, HTTPClient, HTTPDeadlineExceeded, Resilience
from shared_core.instrumentation import get_hooks
from shared_core.outbox._worker import Worker
from shared_core.testing import Reply
from tests.testapp.models import Author
from tests.testapp.tasks import broken, deliver

TOKEN = {"HTTP_AUTHORIZATION": "Bearer unit-test-service-token"}
UUID_HEX = r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def moved(client: Client) -> Callable[..., float]:
    """Scrape at the test's start; the function tells how far a sample has moved since."""
    before = scrape(client)

    def since(name: str, **labels: str) -> float:
        return value(scrape(client), name, **labels) - value(before, name, **labels)

    return since


@pytest.mark.django_db
def test_requests_are_counted_by_route_template_method_and_status_class(client, moved):
    """Two reads of two different ids are one series, labelled with the route template, not the path."""
    for _ in range(2):
        author = Author.objects.create(name="a", email="a@example.com")
        assert client.delete(f"/api/t/authors/{author.id}/", **TOKEN).status_code == 204
    assert client.get(f"/api/t/authors/{uuid.uuid4()}/", **TOKEN).status_code == 405
    labels = {"route": "/api/t/authors/{author_id}/", "status": "2xx"}
    assert moved("http_server_requests_total", method="DELETE", **labels) == 2
    assert moved("http_server_request_duration_seconds_count", method="DELETE", **labels) == 2
    assert moved("http_server_requests_total", route="/api/t/authors/{author_id}/", method="GET", status="4xx") == 1


@pytest.mark.django_db
def test_unknown_paths_and_methods_get_fixed_labels(client, moved):
    """A path no route matches is <unmatched>, and a made-up method is other: no label grows from input."""
    assert client.get(f"/nothing/{uuid.uuid4()}/", **TOKEN).status_code == 404
    assert client.generic("BREW", "/api/whoami/", **TOKEN).status_code in (200, 405)
    assert moved("http_server_requests_total", route="<unmatched>", method="GET", status="4xx") == 1
    assert sum(
        moved("http_server_requests_total", route="/api/whoami/", method="other", status=s) for s in ("2xx", "4xx")
    )
    text = client.get("/metrics").content.decode()
    assert "BREW" not in text and "/nothing/" not in text


@pytest.mark.django_db
def test_database_queries_are_counted_per_request(client, moved):
    """A delete's queries are counted into the per-request histogram of its route, and their time summed."""
    author = Author.objects.create(name="a", email="a@example.com")
    sent: list[str] = []

    def record(execute, sql, params, many, context):  # Django's documented execute wrapper signature
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert client.delete(f"/api/t/authors/{author.id}/", **TOKEN).status_code == 204
    route = {"route": "/api/t/authors/{author_id}/"}
    assert moved("http_server_request_db_queries_count", **route) == 1
    assert moved("http_server_request_db_queries_sum", **route) == len(sent) > 0
    assert moved("http_server_request_db_duration_seconds_sum", **route) > 0


@pytest.mark.django_db(transaction=True)
def test_a_request_deadline_adds_no_query_to_the_count(client, moved):
    """Under X-Request-Deadline (on PostgreSQL a set_config per statement), a request counts its own queries only."""
    route = {"route": "/api/t/authors/{author_id}/"}
    plain, bounded = (Author.objects.create(name="a", email=f"{n}@example.com") for n in ("a", "b"))
    assert client.delete(f"/api/t/authors/{plain.id}/", **TOKEN).status_code == 204
    queries = moved("http_server_request_db_queries_sum", **route)
    assert client.delete(f"/api/t/authors/{bounded.id}/", HTTP_X_REQUEST_DEADLINE="30", **TOKEN).status_code == 204
    assert moved("http_server_request_db_queries_sum", **route) == 2 * queries > 0


@pytest.mark.django_db
def test_metrics_need_no_token_but_take_only_get_and_head(client):
    """/metrics answers without a token; HEAD has no body, and POST is a JSON 405 naming the methods."""
    assert client.get("/metrics").status_code == 200
    head = client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    refused = client.post("/metrics")
    assert refused.status_code == 405 and refused["Allow"] == "GET, HEAD"
    assert refused.json()["error"] == "method_not_allowed"


def test_route_of_a_request_that_never_resolved_is_unmatched(rf):
    """A request Django never resolved (refused before routing) is labelled <unmatched>."""
    assert route_of(rf.get("/x")) == "<unmatched>"


def test_the_app_installs_the_client_hook(settings):
    """With METRICS_ENABLED, shared_core's app puts CLIENT_METRICS among HTTPClient's hooks."""
    assert settings.METRICS_ENABLED and CLIENT_METRICS in get_hooks()


@pytest.mark.django_db
def test_two_503s_then_success_count_two_retries_three_attempts_and_one_ok_call(client, moved, upstream):
    """An upstream answering 503, 503, 200: retries +2, attempts +3, one ok call, no deadline exceeded."""
    upstream.script("/x/", Reply(503), Reply(503), Reply(200, b"{}"))
    HTTPClient(upstream.url, token="t").get("/x/")
    host = upstream.url.split("//", 1)[1]
    assert moved("http_client_retries_total", upstream=host) == 2
    assert moved("http_client_attempts_total", upstream=host) == 3
    assert moved("http_client_calls_total", upstream=host, outcome="ok") == 1
    assert moved("http_client_call_duration_seconds_count", upstream=host) == 1
    assert moved("http_client_deadline_exceeded_total", upstream=host) == 0


@pytest.mark.django_db
def test_a_spent_deadline_is_counted(client, moved, upstream):
    """A call cut at its deadline counts once as deadline_exceeded, as an outcome and in its own counter."""
    upstream.script("/slow/", Reply(delay=5))
    with pytest.raises(HTTPDeadlineExceeded):
        HTTPClient(upstream.url, token="t", retries=0, deadline=0.3).get("/slow/")
    host = upstream.url.split("//", 1)[1]
    assert moved("http_client_deadline_exceeded_total", upstream=host) == 1
    assert moved("http_client_calls_total", upstream=host, outcome="deadline_exceeded") == 1


@pytest.mark.django_db
def test_an_opening_circuit_and_its_refusals_are_counted(client, moved, upstream):
    """Four failures open the circuit: state gauge 2, one transition to open, the refused call counted by reason."""
    upstream.script("/down/", Reply(503))
    policy = Resilience(minimum_calls=4, retry_budget=False)
    client_ = HTTPClient(upstream.url, token="t", retries=0, resilience=policy)
    for _ in range(4):
        client_.get("/down/")
    with pytest.raises(HTTPCircuitOpen):
        client_.get("/down/")
    host = upstream.url.split("//", 1)[1]
    assert value(scrape(client), "http_client_circuit_state", upstream=host) == 2
    assert moved("http_client_circuit_transitions_total", upstream=host, state="open") == 1
    assert moved("http_client_refused_calls_total", upstream=host, reason="circuit_open") == 1
    assert moved("http_client_calls_total", upstream=host, outcome="circuit_open") == 1
    assert moved("http_client_attempts_total", upstream=host) == 4


def outbox_gauges() -> dict[tuple[str, str], float]:
    text = exposition(OutboxCollector(["default", "hooks"])).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "outbox_tasks"]
    return {(s.labels["queue"], s.labels["state"]): s.value for s in family.samples}


@pytest.mark.django_db(transaction=True)
def test_outbox_gauges_follow_the_tasks_in_the_database(upstream):
    """Ready, failed and zero counts per queue come from the database at scrape time, every queue listed."""
    assert outbox_gauges()[("hooks", "ready")] == 0
    upstream.script("/hook/", Reply(200, b"{}"))
    deliver.enqueue(upstream.url, {"n": "1"})
    broken.enqueue()
    gauges = outbox_gauges()
    assert gauges[("hooks", "ready")] == 1 and gauges[("default", "ready")] == 1
    Worker(worker_id="w").drain()
    gauges = outbox_gauges()
    assert gauges[("hooks", "ready")] == gauges[("default", "ready")] == 0
    assert gauges[("default", "failed")] == 1 and gauges[("hooks", "failed")] == 0
    assert set(gauges) == {(q, s) for q in ("default", "hooks") for s in ("ready", "scheduled", "running", "failed")}


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_timed_from_enqueue_and_each_run_counted(client, moved, upstream):
    """A delivered task adds one delivery latency and one successful run; a failing one adds a failed run."""
    upstream.script("/hook/", Reply(200, b"{}"))
    deliver.enqueue(upstream.url, {"n": "1"})
    broken.enqueue()
    assert Worker(worker_id="w").drain() == 2
    assert moved("outbox_delivery_latency_seconds_count", queue="hooks") == 1
    assert moved("outbox_delivery_latency_seconds_sum", queue="hooks") > 0
    assert moved("outbox_task_runs_total", queue="hooks", status="successful") == 1
    assert moved("outbox_task_runs_total", queue="default", status="failed") == 1
    assert moved("outbox_delivery_latency_seconds_count", queue="default") == 0


@pytest.mark.django_db
def test_no_label_holds_an_id(client):
    """After requests to many ids, no label value in the whole exposition looks like a UUID."""
    for _ in range(3):
        client.delete(f"/api/t/authors/{uuid.uuid4()}/", **TOKEN)
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label in sample.labels.values():
                assert not re.search(UUID_HEX, label), (sample.name, label)


@pytest.mark.django_db(transaction=True)
def test_the_worker_serves_its_metrics_on_its_own_port(upstream, tmp_path):
    """`outbox work --metrics-port` serves the worker's metrics over HTTP; a port already taken is a CommandError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def delivered(text: str) -> float:
        samples = (s for f in text_string_to_metric_families(text) for s in f.samples)
        return sum(s.value for s in samples if s.name == "outbox_delivery_latency_seconds_count")

    before = delivered(exposition().decode())
    upstream.script("/hook/", Reply(200, b"{}"))
    deliver.enqueue(upstream.url, {"n": "1"})
    work = ["outbox", "work", "--max-tasks", "1", "--heartbeat", str(tmp_path / "beat"), "--metrics-port", str(port)]
    call_command(*work)
    served = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert served.status_code == 200 and delivered(served.text) == before + 1
    with pytest.raises(CommandError, match=f"--metrics-port {port}: "):
        call_command(*work)
