"""Fleet resilience: what a sick neighbour costs ticket-service, with its guards on (the image's defaults) and off.

ticket-service's create asks user-service about its requester; its read asks nobody. Here user-service is
bench/upstream_app.py under gunicorn in a container of its own, and each ticket-service container (pinned
to one CPU, as in bench/throughput.py) calls it at its own address. Rows, each against a baseline measured
in the same run:

- ``healthy_on_vs_off_rps``: wrk creating tickets with every neighbour well, the guards (bulkhead, circuit
  breaker, retry budget) on against off: what they cost when nothing is wrong (target >= 0.97);
- ``hung``: the neighbour paused while 12 clients create tickets and 4 read one (the issue's scenario).
  Reads per second against the same 4 readers' with nothing wrong, the reads' p99, the p99 of the creates
  refused (503) once a circuit opened, how many creates after that still waited (a half-open probe, or a
  worker whose own circuit had not opened yet), and how long after the neighbour came back the first create
  passed;
- ``outage``: the neighbour refusing connections (stopped): requests that reached it per create, from
  ticket-service's own http_client_attempts_total / http_client_calls_total (3.76 before the guards).

Guards off is ``HTTP_CLIENT_CIRCUIT_BREAKER=0``, ``HTTP_CLIENT_RETRY_BUDGET=0`` and
``HTTP_CLIENT_MAX_CONCURRENT=0``: the client as it was before 0.2.0.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import docker
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import summary
from bench.throughput import ROUND, SERVER_CPU, WRK_CPU, spread, start, wrk
from bench.upstream_app import BODY

#: What turns the guards off.
GUARDS_OFF = {"HTTP_CLIENT_CIRCUIT_BREAKER": "0", "HTTP_CLIENT_RETRY_BUDGET": "0", "HTTP_CLIENT_MAX_CONCURRENT": "0"}
#: The user every create names: the id bench/upstream_app.py answers with.
REQUESTER = "4e5af6ba-73c8-4610-9d3a-2525661fe817"
MIN_ROUNDS = 6
MAX_ROUNDS = 20
PRECISION = 0.05
#: Clients of the hung-neighbour scenario, and how long each of its phases runs.
READERS, CREATORS = 4, 12
PHASE_SECONDS = 8.0
#: A read's timeout: far above a read's milliseconds, below the creates' deadline (a read stuck behind them).
READ_TIMEOUT = 3.0
#: A create's timeout, above ticket-service's HTTP_CLIENT_DEADLINE (15 s by default).
CREATE_TIMEOUT = 20.0
#: Creates sent to a neighbour that refuses connections.
OUTAGE_CALLS = 40
#: wrk's script for a create.
CREATE_SCRIPT = f"""wrk.method = "POST"
wrk.body = '{{"title": "bench", "requester_id": "{REQUESTER}"}}'
wrk.headers["Content-Type"] = "application/json"
"""


def neighbour(client: docker.DockerClient, image: str):
    """user-service's stand-in: bench/upstream_app.py under gunicorn (1 worker, 4 threads); and its origin."""
    container = client.containers.run(
        image,
        [
            "/opt/venv/bin/gunicorn",
            "--chdir",
            "/bench",
            "-k",
            "gthread",
            "--threads",
            "4",
            "-w",
            "1",
            "--bind",
            "0.0.0.0:8000",
            "upstream_app:application",
        ],
        entrypoint=[],
        detach=True,
        read_only=True,
        tmpfs={"/tmp": "size=16m"},
        healthcheck={"test": ["NONE"]},
        volumes={str(Path(__file__).parent): {"bind": "/bench", "mode": "ro"}},
    )
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        try:
            if address and requests.get(f"http://{address}:8000/", timeout=1).content == BODY:
                return container, f"http://{address}:8000"
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(container.logs().decode())


class Answer(NamedTuple):
    """One request: when it started, how long it took, its status (``None``: no answer) and what it said."""

    started: float
    seconds: float
    status: int | None
    refused_by_circuit: bool = False
    retry_after: float = 0.0


def timed(session: requests.Session, method: str, url: str, token: str, timeout: float, **kwargs) -> Answer:
    """Send one request and time it."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    try:
        answer = session.request(method, url, headers=headers, timeout=timeout, **kwargs)
    except requests.RequestException:
        return Answer(started, time.monotonic() - started, None)
    seconds = time.monotonic() - started
    if answer.status_code != 503:
        return Answer(started, seconds, answer.status_code)
    by_circuit = "circuit" in answer.json().get("detail", "")
    return Answer(started, seconds, 503, by_circuit, float(answer.headers.get("Retry-After", 0)))


def clients(count: int, work, stop: threading.Event) -> tuple[list[threading.Thread], list[Answer]]:
    """``count`` threads calling ``work(session)`` until ``stop``; each answer lands in the list."""
    seen: list[Answer] = []

    def run() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                answer = work(session)
                seen.append(answer)
                stop.wait(min(answer.retry_after, 1.0))  # a client that honours Retry-After, up to 1 s

    threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, seen


def read_phase(read_url: str, token: str, extra=None) -> tuple[list[Answer], list[Answer]]:
    """READERS reading for PHASE_SECONDS (beside ``extra(session)`` creators when given): reads, creates."""
    stop = threading.Event()
    # A connection per read, as the edge spreads requests over both gunicorn workers: a reader's kept-alive
    # connection would settle on whichever worker still has a free thread and hide the other's stall.
    threads, reads = clients(
        READERS, lambda s: timed(s, "GET", read_url, token, READ_TIMEOUT, headers={"Connection": "close"}), stop
    )
    creates: list[Answer] = []
    if extra is not None:
        more, creates = clients(CREATORS, extra, stop)
        threads += more
    time.sleep(PHASE_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(CREATE_TIMEOUT + 5)
    return reads, creates


def p99_ms(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[98] * 1000 if len(seconds) > 1 else 0.0


def hung(ticket: str, read_url: str, token: str, upstream) -> dict:
    """The issue's scenario on one ticket-service: baseline reads, then the neighbour paused, then back."""
    create_url = f"{ticket}/api/tickets/"

    def create(session: requests.Session) -> Answer:
        return timed(session, "POST", create_url, token, CREATE_TIMEOUT, json={"title": "b", "requester_id": REQUESTER})

    baseline, _ = read_phase(read_url, token)
    upstream.pause()
    try:
        reads, creates = read_phase(read_url, token, create)
    finally:
        upstream.unpause()
    back = time.monotonic()
    with requests.Session() as session:
        while time.monotonic() - back < 60 and create(session).status != 201:
            time.sleep(0.05)
    recovered = time.monotonic() - back
    base_rate, hung_rate = (sum(r.status == 200 for r in rs) / PHASE_SECONDS for rs in (baseline, reads))
    opened = min((c.started for c in creates if c.refused_by_circuit), default=None)
    after = [c for c in creates if opened is not None and c.started >= opened]
    refused = [c.seconds for c in after if c.status == 503]
    by_circuit = [c.seconds for c in after if c.refused_by_circuit]
    return {
        "baseline_reads_per_s": base_rate,
        "reads_per_s": hung_rate,
        "reads_vs_baseline": hung_rate / base_rate,
        "read_p99_ms": p99_ms([r.seconds for r in reads]),
        "failed_reads": sum(r.status != 200 for r in reads),
        "creates": len(creates),
        "creates_by_status": {str(status): n for status, n in Counter(c.status for c in creates).items()},
        "circuit_opened_after_s": None if opened is None else opened - min(c.started for c in creates),
        "fail_fast_p99_ms": p99_ms(refused) if refused else None,
        "circuit_refused_p99_ms": p99_ms(by_circuit) if by_circuit else None,
        # Let through after the first circuit opened: a half-open probe, or a worker whose circuit had not opened.
        "slow_after_open": sum(c.seconds >= 1 for c in after),
        "after_open": len(after),
        "first_success_after_s": recovered,
    }


def per_call(ticket: str, token: str, upstream_label: str) -> float:
    """OUTAGE_CALLS creates; requests that reached (or tried to reach) the neighbour per create."""

    def counts() -> tuple[float, float]:
        text = requests.get(f"{ticket}/metrics", timeout=10).text
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        mine = [s for s in samples if s.labels.get("upstream") == upstream_label]
        return (
            sum(s.value for s in mine if s.name == "http_client_calls_total"),
            sum(s.value for s in mine if s.name == "http_client_attempts_total"),
        )

    calls, attempts = counts()
    with requests.Session() as session:
        for _ in range(OUTAGE_CALLS):
            timed(session, "POST", f"{ticket}/api/tickets/", token, CREATE_TIMEOUT,
                  json={"title": "b", "requester_id": REQUESTER})  # fmt: skip
    calls_after, attempts_after = counts()
    return (attempts_after - attempts) / (calls_after - calls)


def run(image: str) -> dict:
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    upstream, origin = neighbour(client, image)
    containers = {}
    try:
        for mode, env in (("on", {}), ("off", GUARDS_OFF)):
            containers[mode] = start(
                client, image, token, bare=False, cpus=SERVER_CPU, published=False,
                GUNICORN_MAX_REQUESTS="0", USER_SERVICE_URL=origin, **env,
            )  # fmt: skip
        urls = {mode: url for mode, (_, url) in containers.items()}
        origins = {mode: url.split("/api/")[0] for mode, url in urls.items()}
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(CREATE_SCRIPT)
            script.flush()
            creates = {mode: f"{origin_}/api/tickets/" for mode, origin_ in origins.items()}
            for url in creates.values():
                wrk(url, token, ROUND, WRK_CPU, script=script.name)  # warm-up
            rps: dict[str, list[float]] = {"on": [], "off": []}
            ratios: list[float] = []
            order = ["on", "off"]
            for done in range(1, MAX_ROUNDS + 1):
                order.reverse()
                for mode in order:
                    rps[mode].append(wrk(creates[mode], token, ROUND, WRK_CPU, script=script.name)[0])
                ratios.append(rps["on"][-1] / rps["off"][-1])
                if done >= MIN_ROUNDS and spread(ratios)["ci95_width"] <= PRECISION:
                    break
        result: dict = {
            "healthy_create_rps": {mode: summary(values) for mode, values in rps.items()},
            "healthy_on_vs_off": spread(ratios),
            "healthy_on_vs_off_rps": statistics.median(ratios),
            "rounds": done,
        }
        result["hung"] = {mode: hung(origins[mode], urls[mode], token, upstream) for mode in ("on", "off")}
        # The neighbour's address with nothing listening on the port: every connection refused, as when stopped.
        refused = origin.split("://", 1)[1].split(":")[0] + ":8001"
        outage = {}
        for mode, env in (("on", {}), ("off", GUARDS_OFF)):
            container, url = start(
                client, image, token, bare=False, cpus=SERVER_CPU, published=False,
                USER_SERVICE_URL=f"http://{refused}", **env,
            )  # fmt: skip
            try:
                outage[mode] = per_call(url.split("/api/")[0], token, refused)
            finally:
                container.remove(force=True)
        result["outage_requests_per_call"] = outage
        result["settings"] = {
            "ticket-service": f"2 gthread workers x 4 threads on CPU {SERVER_CPU}; guards off: {GUARDS_OFF}",
            "hung": f"{READERS} readers and {CREATORS} creators (Retry-After honoured up to 1 s) for "
            f"{PHASE_SECONDS:g} s, reads after the same readers' {PHASE_SECONDS:g} s alone",
            "outage": f"{OUTAGE_CALLS} creates to a neighbour address with nothing listening",
        }
        return result
    finally:
        for container, _ in containers.values():
            container.remove(force=True)
        upstream.remove(force=True)
