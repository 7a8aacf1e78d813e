"""A bounded load loop with shared_core's HTTPClient, run as a script: beside the stack or on its overlay network.

Each round: a GET of ticket-service at TICKETS_URL (by default its service name on the overlay: DNS round-robin
over the replicas), a GET through the edge proxy at EDGE_URL, and a POST of a ticket to TICKETS_URL with its own
Idempotency-Key. It runs until SIGTERM or MAX_SECONDS, then prints one JSON line: the number of calls, every
failure, and the keys of the POSTs that succeeded.
Environment: TOKEN, REQUESTER (a user id), MARKER (prefix of titles and keys), MAX_SECONDS, TICKETS_URL
(default http://ticket-service:8000), EDGE_URL (default http://proxy:8002).
It imports nothing of this repository but shared_core, so a service image runs it as it is.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from shared_core.clients import HTTPClient, HTTPClientError

stopping = False


def stop(*_: Any) -> None:
    global stopping
    stopping = True


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    token, marker, requester = os.environ["TOKEN"], os.environ["MARKER"], os.environ["REQUESTER"]
    # The client's own policy: retries with backoff inside a deadline, never a retry of a POST without a key.
    policy: dict[str, Any] = {"token": token, "retries": 6, "deadline": 30.0, "timeout": (2.0, 15.0)}
    direct = HTTPClient(os.environ.get("TICKETS_URL", "http://ticket-service:8000"), **policy)
    edge = HTTPClient(os.environ.get("EDGE_URL", "http://proxy:8002"), **policy)
    calls, failures, created = 0, [], []
    give_up = time.monotonic() + float(os.environ.get("MAX_SECONDS", "600"))
    print("started", file=sys.stderr, flush=True)
    while not stopping and time.monotonic() < give_up:
        key = f"{marker}-{calls}"
        for name, call in (
            ("GET direct", lambda: direct.get("/api/tickets/?limit=1")),
            ("GET edge", lambda: edge.get("/api/tickets/?limit=1")),
            (
                "POST",
                lambda key=key: direct.post(
                    "/api/tickets/", json={"title": key, "requester_id": requester}, idempotency_key=key
                ),
            ),
        ):
            calls += 1
            try:
                response = call()
            except HTTPClientError as exc:
                failures.append(f"{name}: {exc}")
                continue
            if response.status_code >= 400:
                failures.append(f"{name}: {response.status_code} {response.text[:200]}")
            elif name == "POST":
                created.append(key)
        time.sleep(0.05)
    print(json.dumps({"calls": calls, "failures": failures, "created": created}), flush=True)


if __name__ == "__main__":
    main()
