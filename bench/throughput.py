"""Service throughput: wrk against ticket-service's read endpoint, with and without shared_core's middleware.

Both run the same ticket-service image with the same gunicorn settings; the baseline mounts
bench/bare_settings.py, which only drops shared_core's request-context and token middleware.
"""

import re
import secrets
import subprocess
import time
from pathlib import Path

import docker

from bench.stats import summary

DURATION = "8s"
REPEATS = 3
CONNECTIONS = 16


def start(client: docker.DockerClient, image: str, token: str, bare: bool, **extra_env: str):
    kwargs = {}
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
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
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


def wrk(url: str, token: str) -> tuple[float, float]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", "-H", f"Authorization: Bearer {token}", url],
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


def run(image: str) -> dict:
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    containers = {}
    try:
        for mode in ("shared_core", "bare"):
            containers[mode] = start(client, image, token, bare=mode == "bare")
        results: dict[str, dict[str, list[float]]] = {m: {"rps": [], "p99_ms": []} for m in containers}
        for _, url in containers.values():
            wrk(url, token)  # warm-up
        for _ in range(REPEATS):
            for mode, (_, url) in containers.items():
                rps, p99 = wrk(url, token)
                results[mode]["rps"].append(rps)
                results[mode]["p99_ms"].append(p99)
    finally:
        for container, _ in containers.values():
            container.remove(force=True)
    out = {mode: {k: summary(v) for k, v in values.items()} for mode, values in results.items()}
    out["ratio_rps"] = out["shared_core"]["rps"]["median"] / out["bare"]["rps"]["median"]
    out["settings"] = {
        "wrk": f"-t2 -c{CONNECTIONS} -d{DURATION}",
        "gunicorn": "2 gthread workers x 4 threads (image defaults)",
    }
    return out
