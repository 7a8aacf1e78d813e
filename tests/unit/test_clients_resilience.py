"""HTTPClient's bulkhead, circuit breaker, retry budget and deadline-aware admission against a real local server."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings, strategies as st

from devstack import free_port
from shared_core.clients import (
    HTTPBulkheadFull,
    HTTPCircuitOpen,
    HTTPClient,
    HTTPConnectionError,
    HTTPDeadlineExceeded,
    HTTPUpstreamUnavailable,
    Resilience,
)
from shared_core.context import Deadline, request_context
from shared_core.pytest_plugin import eventually
from shared_core.testing import Reply, Upstream, reset_resilience, set_testing

#: Opens after 4 calls at 50% failures, so tests stay short; no retry budget unless a test asks for it.
QUICK = Resilience(minimum_calls=4, retry_budget=False)


def client_for(url: str, resilience: Resilience | None = QUICK, **kwargs) -> HTTPClient:
    kwargs.setdefault("timeout", (1.0, 2.0))
    return HTTPClient(url, token="t", resilience=resilience, **kwargs)


def test_the_bulkhead_refuses_a_call_over_the_bound_without_sending_it(upstream):
    """With max_concurrent=1 and one call hanging, a second call raises HTTPBulkheadFull at once, unsent."""
    upstream.script("/slow", Reply(delay=2.0))
    client = client_for(upstream.url, Resilience(max_concurrent=1))
    first = threading.Thread(target=client.get, args=("/slow",))
    first.start()
    try:
        eventually(lambda: upstream.hits("/slow"), 5, "the first call at the upstream")
        with pytest.raises(HTTPBulkheadFull) as refused:
            client.get("/other")
        assert refused.value.retry_after == 1 and isinstance(refused.value, HTTPConnectionError)
    finally:
        first.join()
    assert upstream.hits("/other") == []
    assert client.get("/other").status_code == 200  # the place is free again


def test_5xx_open_the_circuit_and_the_next_call_is_not_sent(upstream):
    """Four 503 answers open the circuit; the fifth call raises HTTPCircuitOpen without reaching the upstream."""
    upstream.script("/x", Reply(503))
    client = client_for(upstream.url, retries=0)
    for _ in range(4):
        assert client.get("/x").status_code == 503
    with pytest.raises(HTTPCircuitOpen) as refused:
        client.get("/x")
    assert 0 < refused.value.retry_after <= QUICK.open_seconds
    assert "circuit to 127.0.0.1" in str(refused.value)
    assert len(upstream.hits("/x")) == 4


def test_4xx_answers_never_open_the_circuit(upstream):
    """Answers 400-499 are the caller's problem, not the upstream's: they do not count as failures."""
    upstream.script("/missing", Reply(404))
    client = client_for(upstream.url)
    for _ in range(20):
        assert client.get("/missing").status_code == 404
    assert len(upstream.hits("/missing")) == 20


def test_connection_refused_opens_the_circuit():
    """A port with nothing listening fails four calls, then the circuit refuses without connecting."""
    client = client_for(f"http://127.0.0.1:{free_port()}", retries=0)
    for _ in range(4):
        with pytest.raises(HTTPConnectionError) as failed:
            client.get("/x")
        assert not isinstance(failed.value, HTTPUpstreamUnavailable)
    with pytest.raises(HTTPCircuitOpen):
        client.get("/x")


def test_clients_of_one_upstream_share_its_circuit(upstream):
    """A second client of the same host and policy finds the circuit the first one opened."""
    upstream.script("/x", Reply(503))
    for _ in range(4):
        client_for(upstream.url, retries=0).get("/x")
    with pytest.raises(HTTPCircuitOpen):
        client_for(upstream.url).get("/x")


def test_resilience_none_turns_everything_off(upstream):
    """resilience=None: endless failures are all sent, no circuit, no budget."""
    upstream.script("/x", Reply(503))
    client = client_for(upstream.url, None, retries=0)
    for _ in range(30):
        assert client.get("/x").status_code == 503
    assert len(upstream.hits("/x")) == 30


def test_reset_resilience_closes_every_circuit(upstream):
    """reset_resilience() gives every upstream a closed circuit again."""
    upstream.script("/x", Reply(503))
    client = client_for(upstream.url, retries=0)
    for _ in range(4):
        client.get("/x")
    reset_resilience()
    assert client_for(upstream.url, retries=0).get("/x").status_code == 503


def test_the_retry_budget_bounds_requests_per_call_in_an_outage(upstream):
    """Endless 503s with 3 retries a call: the budget keeps requests under 1.2 per call (plus its small floor)."""
    upstream.script("/down", Reply(503))
    policy = Resilience(circuit_breaker=False, retry_ratio=0.2, retry_min_per_second=0.1, window_seconds=10)
    client = client_for(upstream.url, policy, retries=3)
    calls = 50
    for _ in range(calls):
        assert client.get("/down").status_code == 503
    assert len(upstream.hits("/down")) <= calls * 1.2 + 0.1 * 10


def test_without_the_budget_an_outage_multiplies_the_load(upstream):
    """The control: with retry_budget off, each call sends 4 requests."""
    upstream.script("/down", Reply(503))
    client = client_for(upstream.url, Resilience(circuit_breaker=False, retry_budget=False), retries=3)
    for _ in range(10):
        client.get("/down")
    assert len(upstream.hits("/down")) == 40


def test_a_call_whose_deadline_is_shorter_than_typical_is_not_sent(upstream):
    """After calls that typically take 0.3 s, a call with 0.1 s left raises HTTPDeadlineExceeded, unsent."""
    upstream.script("/slowish", Reply(delay=0.3))
    client = client_for(upstream.url)
    client.get("/slowish")
    with request_context("rid", Deadline.after(0.1)), pytest.raises(HTTPDeadlineExceeded, match="takes about"):
        client.get("/slowish")
    assert len(upstream.hits("/slowish")) == 1


@pytest.mark.parametrize("header", ["soon", "1.5", "-1", ""])
def test_an_unparsable_retry_after_is_treated_as_absent(upstream, header):
    """A 503 with Retry-After "soon", "1.5", "-1" or empty is retried with the backoff, not given up on."""
    upstream.script("/ra", Reply(503, headers={"Retry-After": header}), Reply(200))
    assert client_for(upstream.url).get("/ra").status_code == 200
    assert len(upstream.hits("/ra")) == 2


def test_an_unparsable_retry_after_on_every_answer_gives_the_caller_the_last_503(upstream):
    """Retries that run out on 503s with a bad Retry-After return that 503, after every attempt."""
    upstream.script("/ra", Reply(503, headers={"Retry-After": "soon"}))
    assert client_for(upstream.url, retries=2).get("/ra").status_code == 503
    assert len(upstream.hits("/ra")) == 3


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_413_with_retry_after_is_not_retried(upstream, method):
    """A 413 says the body is too large: sending it again repeats the cost, whatever Retry-After says."""
    upstream.script("/big", Reply(413, headers={"Retry-After": "1"}))
    assert client_for(upstream.url).request(method, "/big").status_code == 413
    assert len(upstream.hits("/big")) == 1


@settings(max_examples=40, deadline=None)
@given(
    status=st.integers(min_value=200, max_value=599),
    retry_after=st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 10).map(str)),
)
def test_any_status_and_retry_after_ends_in_a_response_or_a_client_error(status, retry_after):
    """Whatever status and Retry-After come back, the caller gets a response (retried only for 429/502/503/504)."""
    set_testing(True)
    headers = {} if retry_after is None else {"Retry-After": retry_after.replace("\r", "").replace("\n", "")}
    with Upstream() as server:
        server.script("/p", Reply(status, headers=headers), Reply(200))
        response = client_for(server.url, None).get("/p")
        retried = status in (429, 502, 503, 504)
        assert len(server.hits("/p")) == (2 if retried else 1)
        assert response.status_code == (200 if retried else status)
    set_testing(False)
