"""Rotating the service-to-service tokens with rolling restarts, under load, without a single 401."""

from __future__ import annotations

import os
import re
import secrets
import threading
import uuid
from collections import Counter

import pytest
import requests

from tests.integration.conftest import eventually

pytestmark = pytest.mark.docker

#: The callers whose tokens rotate: the services that call others.
ROTATED = ("TICKET_SERVICE_TOKEN", "COMMUNICATION_SERVICE_TOKEN")
#: Upper bound on the load loop's requests, so it stops by itself whatever happens.
MAX_ITERATIONS = 3000
#: An access line answered 401, e.g. `"POST /api/users/ HTTP/1.1" 401 `.
ACCESS_401 = re.compile(r'HTTP/1\.[01]" 401 ')


def test_rotating_tokens_with_rolling_restarts_never_answers_401(stack, tokens):
    """Add the new tokens everywhere, switch callers, drop the old: a request loop meanwhile sees no 401."""
    user_id = stack.call(
        "POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "R"}
    ).json()["id"]
    prefix = f"rot-{uuid.uuid4().hex[:12]}"
    phase, stop = ["add"], threading.Event()
    seen: Counter[tuple[str, object]] = Counter()
    inner_401: list[str] = []

    def load() -> None:
        for n in range(MAX_ITERATIONS):
            if stop.is_set():
                return
            headers = {**stack.auth, "X-Request-ID": f"{prefix}-{n}"}
            try:
                created = requests.post(
                    stack.url("ticket-service") + "/api/tickets/",
                    json={"title": f"r{n}", "requester_id": user_id},
                    headers=headers,
                    timeout=15,
                )
                seen[phase[0], created.status_code] += 1
                if created.status_code == 502 and "answered 401" in created.text:
                    inner_401.append(created.text)
                if created.status_code == 201:
                    ticket = f"{stack.url('ticket-service')}/api/tickets/{created.json()['id']}/"
                    deleted = requests.delete(ticket, headers=headers, timeout=15)
                    seen[phase[0], f"delete {deleted.status_code}"] += 1
                    if deleted.status_code == 502 and "answered 401" in deleted.text:
                        inner_401.append(deleted.text)
            except Exception as exc:  # a container being replaced: counted, never an auth failure
                seen[phase[0], f"unreachable ({type(exc).__name__})"] += 1

    old = {name: tokens[name] for name in ROTATED}
    new = {name: secrets.token_urlsafe(24) for name in ROTATED}
    logs: list[str] = []

    def roll(*services: str) -> None:
        """Replace each service's container in turn with the environment as it is now, and wait for it."""
        for service in services:
            stack.compose("stop", service)
            logs.extend(c.logs().decode(errors="replace") for c in stack.containers(service))
            stack.compose("up", "-d", "--no-deps", service)
            stack.wait_healthy(service)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for name in ROTATED:
            os.environ[f"{name}_NEXT"] = new[name]
        roll("user-service", "communication-service", "file-service")
        phase[0] = "switch"
        for name in ROTATED:
            os.environ[name], os.environ[f"{name}_NEXT"] = new[name], old[name]
        roll("ticket-service", "ticket-worker", "communication-service")
        phase[0] = "drop"
        for name in ROTATED:
            os.environ[f"{name}_NEXT"] = ""
        roll("user-service", "communication-service", "file-service")
        phase[0] = "done"
    finally:
        stop.set()
        worker.join(60)
    tokens.update(new)  # what the stack now runs with, for the tests that check logs
    for service in ("user-service", "communication-service", "file-service", "ticket-service"):
        logs.append(stack.logs(service))
    mine = [line for text in logs for line in text.splitlines() if f"request_id={prefix}-" in line]
    assert [line for line in mine if ACCESS_401.search(line)] == []
    assert inner_401 == [] and not any(status in (401, 403) for _, status in seen), seen
    for step in ("add", "switch", "drop"):
        assert seen[step, 201] > 0, (step, seen)

    user = f"/api/users/{user_id}/"
    for name, caller in (("TICKET_SERVICE_TOKEN", "ticket-service"), ("COMMUNICATION_SERVICE_TOKEN", "comm")):
        refused = requests.get(stack.url("user-service") + user, headers=bearer(old[name]), timeout=10)
        assert refused.status_code == 401, caller
        accepted = requests.get(stack.url("user-service") + user, headers=bearer(new[name]), timeout=10)
        assert accepted.status_code == 200, caller
    done = stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "after", "requester_id": user_id})
    assert done.status_code == 201

    def delivered() -> bool:
        path = f"/api/tickets/{done.json()['id']}/"
        return stack.call("GET", "ticket-service", path).json()["notification"] == "delivered"

    eventually(delivered, 60, "a notification sent with the new token")
    refused = stack.manage(
        "ticket-service",
        "from django_tasks_db.models import DBTaskResult as R; from django.db.models import Q; "
        "print(R.objects.filter(Q(traceback__contains='status 401') | Q(traceback__contains='status 403')).count())",
    )
    assert refused == "0", "an outbox delivery was refused for its token during the rotation"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
