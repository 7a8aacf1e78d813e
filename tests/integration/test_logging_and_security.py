"""One log format and request id across containers; tokens enforced and never logged; bad input is a 4xx."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest

from tests.integration.conftest import SERVICES

pytestmark = pytest.mark.docker

#: The shared text format (shared_core.logging_config.TEXT_LINE_PATTERN), restated: the suite is black-box.
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ service=\S+ request_id=\S+ logger=\S+ .*$")
JSON_KEYS = {"timestamp", "level", "service", "logger", "request_id", "message"}
API_PATHS = {
    "user-service": "/api/users/",
    "ticket-service": "/api/tickets/",
    "communication-service": "/api/notifications/",
    "file-service": "/api/files/",
}


def test_one_request_id_appears_in_three_services_logs(stack):
    """An X-Request-ID sent to ticket-service shows up in ticket-, user- and communication-service logs."""
    user_id = stack.call(
        "POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "L"}
    ).json()["id"]
    request_id = f"it-{uuid.uuid4().hex}"
    response = stack.call(
        "POST",
        "ticket-service",
        "/api/tickets/",
        json={"title": "t", "requester_id": user_id},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201 and response.headers["X-Request-ID"] == request_id
    for service in ("ticket-service", "user-service", "communication-service"):
        assert request_id in stack.logs(service), service


def test_every_log_line_has_the_shared_format(stack):
    """Every line of every service parses with one pattern (LOG_FORMAT=text) or as JSON with the fixed keys."""
    json_mode = os.environ.get("LOG_FORMAT") == "json"
    for service in SERVICES:
        lines = [line for line in stack.logs(service).splitlines() if line.strip()]
        assert len(lines) > 5, service
        for line in lines:
            if json_mode:
                record = json.loads(line)
                assert set(record) >= JSON_KEYS and record["service"] == service, (service, line)
            else:
                assert TEXT_LINE.match(line) and f" service={service} " in line, (service, line)


@pytest.mark.parametrize("service", SERVICES)
def test_missing_or_wrong_token_is_401_and_never_logged(stack, service):
    """Without the token, or with a wrong one, every API answers 401 JSON; the real token is in no log."""
    import requests

    url = stack.url(service) + API_PATHS[service]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": stack.token}):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert stack.token not in response.text
    assert stack.token not in stack.logs(service)


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
