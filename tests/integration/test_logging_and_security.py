"""One log format and request id across containers; tokens enforced and never logged; bad input is a 4xx."""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import pytest

from devstack import SERVICES
from tests.integration.conftest import API_PATHS, LOG_WITHIN

pytestmark = pytest.mark.docker

#: The shared text format (shared_core.logging_config.TEXT_LINE_PATTERN), restated: the suite is black-box.
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ service=\S+ request_id=\S+ trace_id=\S+ logger=\S+ .*$"
)
JSON_KEYS = {"timestamp", "level", "service", "logger", "request_id", "trace_id", "message"}


def create_ticket(stack, request_id: str, **headers: str):
    """A new user, then a ticket for them created under ``request_id`` (ticket -> user and communication)."""
    user_id = stack.call(
        "POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "L"}
    ).json()["id"]
    response = stack.call(
        "POST",
        "ticket-service",
        "/api/tickets/",
        json={"title": "t", "requester_id": user_id},
        headers={"X-Request-ID": request_id, **headers},
    )
    assert response.status_code == 201 and response.headers["X-Request-ID"] == request_id
    return response


def test_one_request_id_appears_in_three_services_logs(stack):
    """An X-Request-ID sent at the edge shows up in the proxy's and ticket-, user- and communication-service logs."""
    request_id = f"it-{uuid.uuid4().hex}"
    create_ticket(stack, request_id)
    for service in ("proxy", "ticket-service", "user-service", "communication-service"):
        stack.wait_for_log(service, request_id)


def test_one_trace_id_follows_a_ticket_through_the_edge_services_and_the_outbox(stack):
    """A W3C trace sent at the edge is in the log lines of the proxy, ticket-, user- and communication-service,
    the last reached by the outbox worker, whose own lines carry it too."""
    trace = uuid.uuid4().hex
    request_id = f"trace-{uuid.uuid4().hex}"
    response = create_ticket(stack, request_id, traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    assert response.headers["traceresponse"].split("-")[1] == trace
    for service in ("proxy", "ticket-service", "user-service", "communication-service"):
        assert any(trace in line for line in stack.wait_for_log(service, request_id).splitlines() if request_id in line)
    give_up = time.monotonic() + LOG_WITHIN
    while not any(trace in w.logs().decode() for w in stack.containers("ticket-worker")):
        assert time.monotonic() < give_up, "no worker logged the delivery's trace"
        time.sleep(0.1)


def test_access_lines_name_the_calling_service(stack):
    """Each access line of one ticket creation names the caller whose token that service accepted."""
    request_id = f"caller-{uuid.uuid4().hex}"
    create_ticket(stack, request_id)
    expected = {
        "ticket-service": ["operator"],
        "communication-service": ["ticket-service"],
        "user-service": ["communication-service", "ticket-service"],  # the requester, then the recipient
    }
    for service, callers in expected.items():
        stack.wait_for_log(service, f"request_id={request_id} caller={callers[-1]}")
        logs = stack.wait_for_log(service, f"request_id={request_id} caller={callers[0]}")
        lines = [line for line in logs.splitlines() if f"request_id={request_id} caller=" in line]
        assert sorted(line.rsplit("caller=", 1)[1] for line in lines) == callers, (service, lines)


def test_file_service_ticket_wide_delete_accepts_only_ticket_service(stack):
    """The operator's token is valid, but file-service's ticket-wide delete answers it 403 JSON."""
    response = stack.call("POST", "file-service", f"/api/tickets/{uuid.uuid4()}/files/delete/", json={})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_every_log_line_has_the_shared_format(stack):
    """Every line of every service and outbox worker parses with one pattern (LOG_FORMAT=text) or as JSON with
    the fixed keys."""
    json_mode = os.environ.get("LOG_FORMAT") == "json"
    containers = [(s, stack.container(s)) for s in SERVICES]
    containers += [("ticket-service", worker) for worker in stack.containers("ticket-worker")]
    for service, container in containers:
        lines = [line for line in container.logs().decode(errors="replace").splitlines() if line.strip()]
        assert lines, container.name  # a worker may have logged only its start, if the other took every task
        for line in lines:
            if json_mode:
                record = json.loads(line)
                assert set(record) >= JSON_KEYS and record["service"] == service, (service, line)
            else:
                assert TEXT_LINE.match(line) and f" service={service} " in line, (service, line)


@pytest.mark.parametrize("service", SERVICES)
def test_a_caller_named_in_extra_callers_is_let_in_by_every_service(stack, tokens, service):
    """EXTRA_CALLERS admits another team's service without editing compose.yaml: 200, logged as that caller."""
    import requests

    request_id = f"guest-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {tokens['GUEST_SERVICE_TOKEN']}", "X-Request-ID": request_id}
    response = requests.get(stack.url(service) + API_PATHS[service], headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    stack.wait_for_log(service, f"request_id={request_id} caller=guest-service")


@pytest.mark.parametrize("service", SERVICES)
def test_missing_or_wrong_token_is_401_and_never_logged(stack, tokens, service):
    """Without the token, with a wrong one, or with it in the query or body: 401 JSON, and no token in any log."""
    import requests

    url = stack.url(service) + API_PATHS[service]
    attempts = [
        {},
        {"headers": {"Authorization": "Bearer wrong"}},
        {"headers": {"Authorization": stack.token}},
        {"headers": {"Authorization": f"BEARER-{stack.token}"}},
        {"params": {"access_token": stack.token, "limit": "5"}},
        {"data": f"token={stack.token}"},
    ]
    marker = f"leak-{uuid.uuid4().hex}"
    for i, attempt in enumerate(attempts):
        headers = {**attempt.pop("headers", {}), "X-Request-ID": f"{marker}-{i}"}
        method = "POST" if "data" in attempt else "GET"
        response = requests.request(method, url, headers=headers, timeout=10, **attempt)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert stack.token not in response.text
    ok = stack.call(
        "GET", service, API_PATHS[service], params={"access_token": stack.token}, headers={"X-Request-ID": marker}
    )
    assert ok.status_code == 200
    for request_id in [marker, *(f"{marker}-{i}" for i in range(len(attempts)))]:
        logs = stack.wait_for_log(service, f"request_id={request_id} caller=")  # the access line, written last
    assert "access_token=[redacted]" in logs
    for value in tokens.values():
        assert value not in logs


@pytest.mark.parametrize(
    ("service", "method", "path", "kwargs"),
    [
        (
            "user-service",
            "POST",
            "/api/users/",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        ("user-service", "POST", "/api/users/", {"json": {"email": 5, "name": ["x"]}}),
        ("user-service", "PATCH", "/api/users/not-a-uuid/", {"json": {}}),
        ("user-service", "POST", "/api/users/", {"data": b'{"a": "' + b"x" * 2_000_000 + b'"}'}),
        ("ticket-service", "POST", "/api/tickets/", {"json": {"title": None, "requester_id": "nope"}}),
        ("ticket-service", "POST", "/api/tickets/", {"json": [1, 2, 3]}),
        ("ticket-service", "GET", "/api/tickets/%00/", {}),
        ("ticket-service", "GET", "/api/tickets/?limit=-1", {}),
        ("communication-service", "POST", "/api/notifications/", {"json": {"ticket_id": 1}}),
        (
            "communication-service",
            "POST",
            "/api/notifications/",
            {"json": {}, "headers": {"Idempotency-Key": "k" * 500}},
        ),
        ("file-service", "POST", "/api/files/", {"files": {"file": ("a.txt", b"abc")}, "data": {"ticket_id": "x"}}),
        ("file-service", "POST", "/api/files/", {"json": {"ticket_id": str(uuid.uuid4())}}),
        ("file-service", "GET", "/api/files/12345/content", {}),
        (
            "file-service",
            "POST",
            "/api/files/",
            {"files": {"file": ("big", b"x" * (10 * 1024 * 1024 + 1))}, "data": {"ticket_id": str(uuid.uuid4())}},
        ),
    ],
)
def test_bad_input_is_a_json_4xx_and_the_service_stays_healthy(stack, service, method, path, kwargs):
    """Malformed JSON, wrong types, huge bodies and malformed ids get a 4xx with a JSON body, never a 500."""
    response = stack.call(method, service, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert "error" in response.json()
    assert stack.call("GET", service, "/readyz").status_code == 200
