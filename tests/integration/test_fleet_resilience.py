"""A sick neighbour costs its callers a bounded share: bulkheads, circuit breakers and retry budgets across
real containers, with the neighbour paused, stopped, or answering 503 to everything."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fleet import EDGE_QUEUE_TIMEOUT, assert_the_fleet_held, hung_neighbour
from tests.integration.conftest import CLIENT_DEADLINE, MARGIN, eventually
from tests.integration.test_resilience import make_user

pytestmark = pytest.mark.docker

#: The stack's default HTTP_CLIENT_OPEN_SECONDS: how long an open circuit refuses before it probes.
OPEN_SECONDS = 5.0
#: A read of one ticket takes milliseconds; one stuck behind threads held by a hung neighbour waits for their
#: deadline (CLIENT_DEADLINE). This bound on the read's timeout tells the two apart.
READ_TIMEOUT = CLIENT_DEADLINE * 2 / 3


def metrics_inside(stack, service: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``service``'s /metrics, read on its own port from inside its container (the edge refuses the path)."""
    code = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    served = stack.container(service).exec_run(["python3", "-c", code])
    assert served.exit_code == 0, served.output.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(served.output.decode())
        for sample in family.samples
    }


def calls_and_attempts(stack, service: str, upstream: str) -> tuple[float, float]:
    samples = metrics_inside(stack, service)
    calls = sum(v for (name, labels), v in samples.items() if name == "http_client_calls_total" and
                ("upstream", upstream) in labels)  # fmt: skip
    return calls, samples.get(("http_client_attempts_total", frozenset({("upstream", upstream)})), 0.0)


#: Run in a service's container: N ticket creates on its own port, each on a new connection (so gunicorn hands
#: them to each of its workers, not to the one an edge connection is kept with); prints how many got 201.
CREATES_INSIDE = """
import os, urllib.request
ok = 0
for _ in range(int(os.environ["N"])):
    request = urllib.request.Request(
        "http://127.0.0.1:8000/api/tickets/", data=os.environ["BODY"].encode(), method="POST",
        headers={"Authorization": "Bearer " + os.environ["TOKEN"], "Content-Type": "application/json"},
    )
    try:
        ok += urllib.request.urlopen(request, timeout=30).status == 201
    except OSError:
        pass
print(ok)
"""


def circuits_closed(stack, service: str, upstream: str, requester: str) -> None:
    """Create tickets naming ``requester`` in ``service`` until they all succeed and every gunicorn process of it
    reports its circuit to ``upstream`` closed, so the next test starts from a healthy fleet."""
    body = json.dumps({"title": "t", "requester_id": requester})

    def closed() -> bool:
        ran = stack.container(service).exec_run(
            ["python3", "-c", CREATES_INSIDE], environment={"N": "8", "BODY": body, "TOKEN": stack.token}
        )
        if ran.output.decode().strip() != "8":
            return False
        state = metrics_inside(stack, service).get(("http_client_circuit_state", frozenset({("upstream", upstream)})))
        return not state

    eventually(closed, OPEN_SECONDS * 6, f"{service}'s circuit to {upstream} closed again")


def test_a_hung_neighbour_leaves_unrelated_reads_fast_and_its_callers_fail_fast(stack):
    """user-service paused: 12 clients creating tickets get JSON 503s, soon from the open circuit, while 4 clients
    reading a ticket keep being answered within a fraction of the deadline; unpaused, creates work again."""
    requester = make_user(stack)
    ticket = stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "t", "requester_id": requester})
    assert ticket.status_code == 201, ticket.text
    seen = hung_neighbour(
        stack.url("ticket-service") + f"/api/tickets/{ticket.json()['id']}/",
        stack.url("ticket-service") + "/api/tickets/",
        {"title": "t", "requester_id": requester},
        stack.auth,
        lambda: stack.paused("user-service"),
        read_timeout=READ_TIMEOUT,
        create_timeout=EDGE_QUEUE_TIMEOUT + CLIENT_DEADLINE + MARGIN * 2,  # its turn at the edge, then its deadline
    )
    assert_the_fleet_held(seen)
    circuits_closed(stack, "ticket-service", "user-service:8000", requester)


def test_a_stopped_neighbour_gets_at_most_1_2_requests_per_call(stack):
    """user-service stopped: 40 creates cost it at most 1.2 connection attempts each (3 retries each without the
    budget and the breaker), each answered with the JSON envelope; at least ten are refused by the open circuits
    with Retry-After."""
    requester = make_user(stack)
    calls_before, attempts_before = calls_and_attempts(stack, "ticket-service", "user-service:8000")
    stack.stop("user-service")
    try:
        answers = [stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "t", "requester_id": requester})
                   for _ in range(40)]  # fmt: skip
        calls_after, attempts_after = calls_and_attempts(stack, "ticket-service", "user-service:8000")
    finally:
        stack.start("user-service")
    # Before the circuits open, a connection to the address user-service just left can time out instead of
    # being refused (a 504 timeout): each is the JSON envelope, and the circuits open either way.
    assert {(a.status_code, a.json()["error"]) for a in answers} <= {
        (503, "upstream_unavailable"),
        (504, "upstream_timeout"),
        (504, "deadline_exceeded"),
    }, [(a.status_code, a.text[:120]) for a in answers]
    assert calls_after - calls_before == 40
    assert (attempts_after - attempts_before) / 40 <= 1.2, attempts_after - attempts_before
    # Each gunicorn worker's circuit opens after DEFAULT_MINIMUM_CALLS (10) failed calls: of 40, at most 20 fail
    # before both are open, and the rest are refused unsent.
    refused = [a for a in answers if a.status_code == 503 and "circuit" in a.json()["detail"]]
    assert len(refused) >= 10, [a.text[:120] for a in answers]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    circuits_closed(stack, "ticket-service", "user-service:8000", requester)


def test_a_neighbour_answering_503_to_everything_gets_at_most_1_2_requests_per_call(stack, upstream):
    """The fake user-service answers 503 to everything: 40 creates reach it at most 1.2 times each, each answered
    JSON 503 upstream_unavailable; once it answers again, the circuit closes and creates succeed."""
    sick = str(uuid.uuid4())
    upstream.script(f"/t/api/users/{sick}/", {"status": 503})
    answers = [stack.call("POST", "ticket-chaos", "/api/tickets/", json={"title": "t", "requester_id": sick})
               for _ in range(40)]  # fmt: skip
    assert {a.status_code for a in answers} == {503}
    assert all(a.json()["error"] == "upstream_unavailable" for a in answers)
    assert len(upstream.seen(f"/t/api/users/{sick}/")) <= 40 * 1.2
    healthy = str(uuid.uuid4())
    upstream.script(f"/t/api/users/{healthy}/", {"status": 200, "body": {"id": healthy}})
    circuits_closed(stack, "ticket-chaos", "upstream:8000", healthy)
