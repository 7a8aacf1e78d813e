"""Service throughput: wrk against ticket-service's read in three configurations of the same image.

- ``everything``: the image's defaults, metrics and tracing on;
- ``quiet``: ``METRICS_ENABLED=0`` and ``TRACING_ENABLED=0``;
- ``bare``: bench/bare_settings.py, which drops all of shared_core's middleware: the bare view.

All three run the same gunicorn settings, pinned to one CPU while wrk runs on the other, so the load
generator never takes the server's core, and wrk reads each container at its own address, not through
docker-proxy's published port (a process on no fixed CPU, copying every byte). Rounds are short and
interleaved, their order rotated, and each round gives its own ratios. More rounds cannot narrow the
spread of the per-round ratios (that is the machine's), only how well their median is known: rounds go on
until the 95% confidence interval of every ratio's median is at most PRECISION wide (or MAX_ROUNDS have
run), and the median is reported with that interval and the per-round spread.
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

from bench.stats import median_interval, summary

DURATION = "8s"
CONNECTIONS = 16
#: One wrk run per configuration per round.
ROUND = "3s"
MIN_ROUNDS = 8
MAX_ROUNDS = 30
#: Rounds stop once the 95% confidence interval of each ratio's median is at most this wide.
PRECISION = 0.05
#: Server containers on one CPU, wrk on another, where the machine has two.
SERVER_CPU, WRK_CPU = ("1", "0") if (os.cpu_count() or 1) >= 2 else (None, None)
MODES = {
    "everything": {},
    "quiet": {"METRICS_ENABLED": "0", "TRACING_ENABLED": "0"},
    "bare": {},
}


def start(
    client: docker.DockerClient,
    image: str,
    token: str,
    bare: bool,
    cpus: str | None = None,
    published: bool = True,
    **extra_env: str,
):
    """A ticket-service container with one ticket, and the URL of that ticket's read.

    ``cpus`` pins it (a cpuset such as ``"1"``); a pinned container also runs without its HEALTHCHECK, whose
    Python process every few seconds would land on the measured CPU: it is ready once /healthz answers.
    The URL is on a port published on 127.0.0.1, or with ``published=False`` at the container's own address.
    """
    kwargs: dict = {"cpuset_cpus": cpus, "healthcheck": {"test": ["NONE"]}} if cpus else {}
    if published:
        kwargs["ports"] = {"8000/tcp": ("127.0.0.1", None)}
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
        tmpfs={"/tmp": "size=16m", "/data": "uid=10001,gid=10001,size=64m"},
        **kwargs,
    )
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        container.reload()
        if (cpus and _answers(_origin(container))) or container.attrs["State"].get("Health", {}).get(
            "Status"
        ) == "healthy":
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(container.logs().decode())
    code = (
        "import uuid; from ticket_service.models import Ticket; "
        "print(Ticket.objects.create(title='t', requester_id=uuid.uuid4()).id)"
    )
    ticket = container.exec_run(["python3", "manage.py", "shell", "-v", "0", "-c", code]).output.decode().strip()
    return container, f"{_origin(container)}/api/tickets/{ticket}/"


def _origin(container) -> str | None:
    """``http://host:port`` of the container's gunicorn: its published port, else its own address."""
    settings = container.attrs["NetworkSettings"]
    if published := settings["Ports"].get("8000/tcp"):
        return f"http://127.0.0.1:{published[0]['HostPort']}"
    return f"http://{settings['IPAddress']}:8000" if settings["IPAddress"] else None


def _answers(origin: str | None) -> bool:
    try:
        return bool(origin) and requests.get(f"{origin}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def wrk(
    url: str, token: str, duration: str = DURATION, cpu: str | None = None, script: str | None = None
) -> tuple[float, float]:
    """Requests per second and p99 in ms of ``url`` under wrk (on CPU ``cpu`` when given); raises on any error.

    ``script``: a wrk Lua script's path (a POST's method, body and headers); ``None``: a GET.
    """
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
            *(["-s", script] if script else []),
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
    """Per-round ratios: median, its 95% confidence interval, the quartiles and their distance, extremes."""
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    low, high = median_interval(ratios)
    return {
        **summary(ratios),
        "ci95_low": low,
        "ci95_high": high,
        "ci95_width": high - low,
        "p25": q1,
        "p75": q3,
        "iqr": q3 - q1,
    }


def run(image: str) -> dict:
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    containers = {}
    try:
        for mode, env in MODES.items():
            # No worker recycling: a process reloading Django mid-round measures the restart, not the request.
            containers[mode] = start(
                client,
                image,
                token,
                bare=mode == "bare",
                cpus=SERVER_CPU,
                published=False,
                GUNICORN_MAX_REQUESTS="0",
                **env,
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
            if done >= MIN_ROUNDS and all(spread(r)["ci95_width"] <= PRECISION for r in ratios.values()):
                break
    finally:
        for container, _ in containers.values():
            container.remove(force=True)
    out: dict = {mode: {k: summary(v) for k, v in values.items()} for mode, values in results.items()}
    out["rounds"] = done
    out["ratios"] = {name: spread(values) for name, values in ratios.items()}
    out["per_round"] = {
        **{name: [round(v, 4) for v in values] for name, values in ratios.items()},
        **{f"{mode}_rps": [round(v, 1) for v in values["rps"]] for mode, values in results.items()},
    }
    out["ratio_rps"] = out["ratios"]["everything_vs_bare"]["median"]
    out["on_vs_off_rps"] = out["ratios"]["everything_vs_quiet"]["median"]
    out["settings"] = {
        "wrk": f"-t1 -c{CONNECTIONS} -d{ROUND} per configuration per round, on CPU {WRK_CPU}, "
        "to each container's own address",
        "gunicorn": f"2 gthread workers x 4 threads (image defaults), no max_requests recycling, on CPU {SERVER_CPU}",
        "rounds": f"{MIN_ROUNDS} to {MAX_ROUNDS}, until every ratio median's 95% confidence interval "
        f"is at most {PRECISION} wide",
    }
    return out
