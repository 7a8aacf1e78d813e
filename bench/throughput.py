"""Service throughput: wrk against ticket-service's read in three configurations of the same image.

- ``everything``: the image's defaults, metrics and tracing on;
- ``quiet``: ``METRICS_ENABLED=0`` and ``TRACING_ENABLED=0``;
- ``bare``: bench/bare_settings.py, which drops all of shared_core's middleware: the bare view.

All three run the same gunicorn settings, pinned to one CPU while wrk runs on the other, so the load
generator never takes the server's core. Rounds are short and interleaved, their order rotated, and each
round gives its own ratios; rounds go on until the interquartile range of every ratio is within SPREAD
(or MAX_ROUNDS have run), and the spread is reported with the median.
"""

import os
import re
import secrets
import statistics
import subprocess
import time
from pathlib import Path

import docker
import requests

from bench.stats import summary

DURATION = "8s"
CONNECTIONS = 16
#: One wrk run per configuration per round.
ROUND = "3s"
MIN_ROUNDS = 6
MAX_ROUNDS = 30
#: Rounds stop once the interquartile range of each per-round ratio is at most this.
SPREAD = 0.04
#: Server containers on one CPU, wrk on another, where the machine has two.
SERVER_CPU, WRK_CPU = ("1", "0") if (os.cpu_count() or 1) >= 2 else (None, None)
MODES = {
    "everything": {},
    "quiet": {"METRICS_ENABLED": "0", "TRACING_ENABLED": "0"},
    "bare": {},
}


def start(client: docker.DockerClient, image: str, token: str, bare: bool, cpus: str | None = None, **extra_env: str):
    """A ticket-service container with one ticket, and the URL of that ticket's read.

    ``cpus`` pins it (a cpuset such as ``"1"``); a pinned container also runs without its HEALTHCHECK, whose
    Python process every few seconds would land on the measured CPU: it is ready once /healthz answers.
    """
    kwargs: dict = {"cpuset_cpus": cpus, "healthcheck": {"test": ["NONE"]}} if cpus else {}
    environment = {
        "SERVICE_AUTH_TOKEN": token,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "GUNICORN_ACCESS_LOG": "0",
        **extra_env,
    }
    if bare:
        environment["DJANGO_SETTINGS_MODULE"] = "bench_bare_settings"
        kwargs["volumes"] = {
            str(Path(__file__).with_name("bare_settings.py")): {"bind": "/app/bench_bare_settings.py", "mode": "ro"}
        }
    container = client.containers.run(
        image,
        detach=True,
        environment=environment,
        read_only=True,
        ports={"8000/tcp": ("127.0.0.1", None)},
        tmpfs={"/tmp": "size=16m", "/data": "uid=10001,gid=10001,size=64m"},
        **kwargs,
    )
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        container.reload()
        if (cpus and _answers(container)) or container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(container.logs().decode())
    code = (
        "import uuid; from ticket_service.models import Ticket; "
        "print(Ticket.objects.create(title='t', requester_id=uuid.uuid4()).id)"
    )
    ticket = container.exec_run(["python3", "manage.py", "shell", "-v", "0", "-c", code]).output.decode().strip()
    port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    return container, f"http://127.0.0.1:{port}/api/tickets/{ticket}/"


def _answers(container) -> bool:
    ports = container.attrs["NetworkSettings"]["Ports"].get("8000/tcp")
    try:
        return bool(ports) and requests.get(f"http://127.0.0.1:{ports[0]['HostPort']}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def wrk(url: str, token: str, duration: str = DURATION, cpu: str | None = None) -> tuple[float, float]:
    """Requests per second and p99 in ms of ``url`` under wrk (on CPU ``cpu`` when given); raises on any error."""
    pinned = ["taskset", "-c", cpu] if cpu else []
    threads = "-t1" if cpu else "-t2"
    done = subprocess.run(
        [
            *pinned,
            "wrk",
            threads,
            f"-c{CONNECTIONS}",
            f"-d{duration}",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"wrk {url} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rps, p99_ms


def spread(ratios: list[float]) -> dict[str, float]:
    """Median, quartiles, their distance (the spread) and the extremes of per-round ratios."""
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {**summary(ratios), "p25": q1, "p75": q3, "iqr": q3 - q1}


def run(image: str) -> dict:
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    containers = {}
    try:
        for mode, env in MODES.items():
            # No worker recycling: a process reloading Django mid-round measures the restart, not the request.
            containers[mode] = start(
                client, image, token, bare=mode == "bare", cpus=SERVER_CPU, GUNICORN_MAX_REQUESTS="0", **env
            )
        urls = {mode: url for mode, (_, url) in containers.items()}
        for url in urls.values():
            wrk(url, token, ROUND, WRK_CPU)  # warm-up: every worker process loaded and its connections open
        results: dict[str, dict[str, list[float]]] = {m: {"rps": [], "p99_ms": []} for m in urls}
        ratios: dict[str, list[float]] = {"everything_vs_bare": [], "everything_vs_quiet": []}
        order = list(urls)
        for done in range(1, MAX_ROUNDS + 1):
            order = order[1:] + order[:1] if done % 2 else order[::-1]  # every position, both directions
            rps = {}
            for mode in order:
                rps[mode], p99 = wrk(urls[mode], token, ROUND, WRK_CPU)
                results[mode]["rps"].append(rps[mode])
                results[mode]["p99_ms"].append(p99)
            ratios["everything_vs_bare"].append(rps["everything"] / rps["bare"])
            ratios["everything_vs_quiet"].append(rps["everything"] / rps["quiet"])
            if done >= MIN_ROUNDS and all(spread(r)["iqr"] <= SPREAD for r in ratios.values()):
                break
    finally:
        for container, _ in containers.values():
            container.remove(force=True)
    out: dict = {mode: {k: summary(v) for k, v in values.items()} for mode, values in results.items()}
    out["rounds"] = done
    out["ratios"] = {name: spread(values) for name, values in ratios.items()}
    out["ratio_rps"] = out["ratios"]["everything_vs_bare"]["median"]
    out["on_vs_off_rps"] = out["ratios"]["everything_vs_quiet"]["median"]
    out["settings"] = {
        "wrk": f"-t1 -c{CONNECTIONS} -d{ROUND} per configuration per round, on CPU {WRK_CPU}",
        "gunicorn": f"2 gthread workers x 4 threads (image defaults), no max_requests recycling, on CPU {SERVER_CPU}",
        "rounds": f"{MIN_ROUNDS} to {MAX_ROUNDS}, until every ratio's interquartile range is <= {SPREAD}",
    }
    return out
