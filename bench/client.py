"""HTTPClient overhead: get_json against bare requests, on a local gunicorn gthread upstream."""

import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.stats import rate, summary
from devstack import free_port
from shared_core.clients import HTTPClient

CALLS = 1000
REPEATS = 5


def serve() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "bench.upstream_app:application",
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url, timeout=1)
            return server, url
        except requests.ConnectionError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the benchmark upstream did not start")


def run() -> dict:
    server, url = serve()
    try:
        client = HTTPClient(url, token="bench-token")
        session = requests.Session()
        modes = {
            "httpclient_get_json": lambda: client.get_json("/user"),
            "requests_session": lambda: session.get(f"{url}/user", timeout=10).json(),
            "new_connection_per_call": lambda: requests.get(f"{url}/user", timeout=10).json(),
        }
        for call in modes.values():  # warm up every path once
            call()
        rates: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(REPEATS):  # interleave the modes so drift hits all alike
            for name, call in modes.items():
                rates[name] += rate(call, CALLS, 1)
    finally:
        server.terminate()
        server.wait(10)
    medians = {name: summary(values) for name, values in rates.items()}
    ours = medians["httpclient_get_json"]["median"]
    return {
        "calls_per_second": medians,
        "vs_requests_session": ours / medians["requests_session"]["median"],
        "vs_new_connection": ours / medians["new_connection_per_call"]["median"],
        "calls": CALLS,
        "repeats": REPEATS,
    }
