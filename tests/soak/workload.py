"""The soak's clients: seeded random operations on users, tickets and files through the edge, all recorded."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from functools import partialmethod
from typing import Any

import requests

from tests.soak.history import History, Op

#: Seconds a client waits for one answer: above the edge's own upstream timeout would hide nothing more.
REQUEST_TIMEOUT = 15.0
#: Attempts of one idempotent ticket create (the first included) while its outcome stays unknown.
CREATE_ATTEMPTS = 4
#: How many of the newest rows of a kind form the hot set, and the share of picks that go to it.
HOT_ROWS, HOT_SHARE = 4, 0.5
#: Relative weights of the operations.
WEIGHTS: Mapping[str, int] = {
    "create_user": 10,
    "patch_user": 16,
    "delete_user": 5,
    "restore_user": 4,
    "create_ticket": 10,
    "delete_ticket": 4,
    "restore_ticket": 3,
    "upload_file": 8,
    "delete_file": 3,
    "restore_file": 2,
    "read": 5,
}
#: Where each kind of row lives, and its path.
ROUTES = {
    "user": ("user-service", "/api/users/"),
    "ticket": ("ticket-service", "/api/tickets/"),
    "file": ("file-service", "/api/files/"),
}


class Workload:
    """``clients`` threads running seeded random operations until ``stop`` is set."""

    def __init__(self, urls: Mapping[str, str], token: str, history: History, seed: int, clients: int = 4) -> None:
        self.urls, self.history, self.seed, self.clients = urls, history, seed, clients
        #: In every value this run writes, so that its rows are told from those of anything else on the stack.
        self.marker = f"soak{uuid.uuid4().hex[:8]}"
        self.auth = {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self._known: dict[str, list[str]] = {"user": [], "ticket": [], "file": []}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._run, args=(n,), name=f"soak-client-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                raise AssertionError(f"{thread.name} did not stop within {timeout} s")

    def _run(self, client: int) -> None:
        rng = random.Random(f"{self.seed}-{client}")
        session = requests.Session()
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not self.stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            getattr(self, kind)(client, rng, session)
            time.sleep(rng.uniform(0, 0.02))

    # -- the operations -------------------------------------------------------------------------------------

    def create_user(self, client: int, rng: random.Random, session: requests.Session) -> None:
        tag = self._tag(rng)
        body = {"email": f"u-{tag}@soak.example", "name": f"name-{tag}"}
        op = self.history.new(client, "create_user", **body)
        self._send(session, op, "POST", "user", "", json=body)
        self._learn("user", op)

    def patch_user(self, client: int, rng: random.Random, session: requests.Session) -> None:
        target = self._pick("user", rng)
        if target is None:
            return
        name = rng.choice(["name", "email"])
        tag = self._tag(rng)
        value = f"p-{tag}@soak.example" if name == "email" else f"name-{tag}"
        op = self.history.new(client, "patch_user", target, **{name: value})
        self._send(session, op, "PATCH", "user", f"{target}/", json={name: value})

    def create_ticket(self, client: int, rng: random.Random, session: requests.Session) -> None:
        requester = self._pick("user", rng)
        if requester is None:
            return
        key = f"t-{self._tag(rng)}"
        body = {"title": key, "requester_id": requester}
        for _ in range(CREATE_ATTEMPTS):  # the same key each time: stored once whatever the answers were
            op = self.history.new(client, "create_ticket", key=key)
            self._send(session, op, "POST", "ticket", "", json=body, headers={"Idempotency-Key": key})
            self._learn("ticket", op)
            if not op.unknown or self.stop.is_set():
                break

    def upload_file(self, client: int, rng: random.Random, session: requests.Session) -> None:
        ticket = self._pick("ticket", rng)
        if ticket is None:
            return
        data = rng.randbytes(rng.randint(1, 3000))
        op = self.history.new(client, "create_file", ticket_id=ticket)
        files = {"file": (f"f-{self._tag(rng)}.bin", data, "application/octet-stream")}
        self._send(session, op, "POST", "file", "", data={"ticket_id": ticket}, files=files)
        self._learn("file", op)

    def read(self, client: int, rng: random.Random, session: requests.Session) -> None:
        kind = rng.choice(list(ROUTES))
        target = self._pick(kind, rng)
        if target is not None:
            self._send(session, self.history.new(client, "read", target), "GET", kind, f"{target}/")

    def _soft(self, client: int, rng: random.Random, session: requests.Session, kind: str, action: str) -> None:
        target = self._pick(kind, rng)
        if target is None:
            return
        op = self.history.new(client, f"{action}_{kind}", target)
        if action == "delete":
            self._send(session, op, "DELETE", kind, f"{target}/")
        else:
            self._send(session, op, "POST", kind, f"{target}/restore/")

    delete_user = partialmethod(_soft, kind="user", action="delete")
    restore_user = partialmethod(_soft, kind="user", action="restore")
    delete_ticket = partialmethod(_soft, kind="ticket", action="delete")
    restore_ticket = partialmethod(_soft, kind="ticket", action="restore")
    delete_file = partialmethod(_soft, kind="file", action="delete")
    restore_file = partialmethod(_soft, kind="file", action="restore")

    # -- plumbing ------------------------------------------------------------------------------------------

    def _tag(self, rng: random.Random) -> str:
        return f"{self.marker}-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"

    def _pick(self, kind: str, rng: random.Random) -> str | None:
        """A known row of ``kind``: half the time one of the newest few, so that clients race on the same rows."""
        with self._lock:
            known = self._known[kind]
            if not known:
                return None
            return rng.choice(known[-HOT_ROWS:] if rng.random() < HOT_SHARE else known)

    def _learn(self, kind: str, op: Op) -> None:
        if op.acked and isinstance(op.body, dict) and "id" in op.body:
            op.target = op.body["id"]
            with self._lock:
                if op.target not in self._known[kind]:
                    self._known[kind].append(op.target)

    def _send(self, session: requests.Session, op: Op, method: str, kind: str, path: str, **kwargs: Any) -> None:
        service, base = ROUTES[kind]
        headers = {**self.auth, **kwargs.pop("headers", {})}
        op.service, op.start = service, time.monotonic()
        try:
            answer = session.request(
                method, self.urls[service] + base + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
            )
        except requests.RequestException:
            op.end = time.monotonic()
            return
        op.end, op.status = time.monotonic(), answer.status_code
        op.shape_error = envelope_problem(answer, op)


def envelope_problem(answer: requests.Response, op: Op) -> str | None:
    """What is wrong with an answer's form, if anything: every body but a 204's is JSON; errors are envelopes."""
    if answer.status_code == 204:
        return None
    if not answer.headers.get("Content-Type", "").startswith("application/json"):
        return f"answered {answer.headers.get('Content-Type')!r}, not JSON: {answer.text[:80]!r}"
    try:
        op.body = answer.json()
    except ValueError:
        return f"answered a body that does not parse as JSON: {answer.text[:80]!r}"
    envelope = isinstance(op.body, dict) and {"error", "detail", "request_id"} <= op.body.keys()
    if answer.status_code >= 400 and not envelope:
        return f"answered an error without the envelope: {answer.text[:120]!r}"
    return None
