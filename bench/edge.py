"""The edge proxy: its cost on a read, its p99 while slow clients are held, and what its image adds.

One ticket-service container (image defaults, no worker recycling) and wrk, measured like
bench/throughput.py: the service pinned to one CPU, wrk to the other, every address a container's own
(no docker-proxy, a process on no fixed CPU copying every byte). Up to four proxies sit in front of the same
service, one worker each:

- ``proxy``: on wrk's CPU. The service has its core to itself in both modes, so the ratio to direct is
  what the extra hop costs the read: its latency, and any connection it fails to keep (without upstream
  keep-alive each read opens a connection to gunicorn, which costs the service's core). This is the edge as
  deployed, a container with its own CPU budget, and the figure the target is set on;
- ``proxy_shared``: on the service's CPU. The hop's own CPU comes out of the service's: what an edge costs
  when it has no core of its own (reported, no target);
- ``per_request``: as ``proxy``, with upstream keep-alive off (``PROXY_UPSTREAM_KEEPALIVE=0``), the edge
  as it was before 0.2.0: what keeping connections gains, measured side by side;
- ``haproxy`` (when given a root with Debian's HAProxy): the alternative weighed for the edge, on wrk's
  CPU, with bench/haproxy/haproxy.cfg (one thread, the edge's timeouts, an access line per request,
  connections reused, replicas re-resolved through Docker's DNS).

With 256 slow connections held against ``proxy`` (``slow``), its p99 is compared with its idle p99.
Rounds are short, interleaved, their order rotated, and go on like throughput's until the 95% confidence
interval of each TARGETED ratio's median is at most PRECISION wide (or MAX_ROUNDS have run).
"""

from __future__ import annotations

import secrets
import socket
import statistics
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import docker
import requests

from bench.stats import summary
from bench.throughput import CONNECTIONS, ROUND, SERVER_CPU, WRK_CPU, spread, start, wrk

#: Slow connections held against the proxy while wrk measures (half trickle headers, half bodies).
SLOW = 256
MIN_ROUNDS = 8
MAX_ROUNDS = 24
#: Rounds stop once the 95% confidence interval of each TARGETED ratio's median is at most this wide.
PRECISION = 0.05
#: The proxy without upstream keep-alive: a new connection to gunicorn per request, the edge before 0.2.0.
NO_REUSE = {"PROXY_UPSTREAM_KEEPALIVE": "0"}
#: Each ratio of requests per second: (mode, baseline), per round.
RATIOS = {
    "proxy_vs_direct_rps": ("proxy", "direct"),
    "shared_vs_direct_rps": ("proxy_shared", "direct"),
    "per_request_vs_direct_rps": ("per_request", "direct"),
    "keepalive_vs_per_request_rps": ("proxy", "per_request"),
    "haproxy_vs_direct_rps": ("haproxy", "direct"),
    "proxy_vs_haproxy_rps": ("proxy", "haproxy"),
}
#: HAProxy's configuration for the side-by-side figure.
HAPROXY_CONFIG = Path(__file__).with_name("haproxy") / "haproxy.cfg"
TARGETED = ("proxy_vs_direct_rps", "shared_vs_direct_rps")


def installed(client: docker.DockerClient, image: str) -> dict[str, int]:
    """Package name to installed bytes, from dpkg's database in ``image``."""
    listing = client.containers.run(
        image, ["dpkg-query", "-W", "-f", "${Package} ${Installed-Size}\\n"], entrypoint=[], remove=True
    )
    return {name: int(size) * 1024 for name, size in (line.split() for line in listing.decode().splitlines())}


def image_size(client: docker.DockerClient, proxy: str, root: str) -> dict:
    """The proxy image's size, and what nginx, HAProxy and their packages add over the project's Debian root."""
    ours = installed(client, proxy)
    base = installed(client, root)
    added = {name: size for name, size in ours.items() if name not in base}
    return {
        "proxy_image_mb": client.images.get(proxy).attrs["Size"] / 1e6,
        "added_over_root_mb": sum(added.values()) / 1e6,
        "added_packages": sorted(added),
    }


def wait_answering(url: str, token: str, within: float = 60.0) -> None:
    """Until ``url`` answers 200 with the service token (at most ``within`` seconds)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        with suppress(requests.RequestException):
            if requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=2).ok:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} does not answer")


class SlowClients:
    """``count`` connections that send a byte a second: half still in their headers, half in their bodies."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.sockets = []
        for i in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\na=")
            self.sockets.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    def trickle(self) -> None:
        while not self.stop.wait(1.0):
            for sock in self.sockets:
                with suppress(OSError):
                    sock.send(b"a")

    def __enter__(self) -> SlowClients:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.sockets:
            sock.close()


def run(
    service_image: str, proxy_image: str, root_image: str, haproxy_image: str | None = None, **proxy_env: str
) -> dict:
    """The figures; ``haproxy_image`` (a root with Debian's haproxy) adds HAProxy on wrk's CPU as ``haproxy``."""
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    network = client.networks.create(f"bench-edge-{uuid.uuid4().hex[:8]}")
    containers = []
    try:
        # No worker recycling: a Django worker booting every 1,000 requests would swamp the differences measured.
        service, direct = start(
            client, service_image, token, bare=False, cpus=SERVER_CPU, published=False, GUNICORN_MAX_REQUESTS="0"
        )
        containers.append(service)
        network.connect(service, aliases=["ticket-service"])
        path = urlsplit(direct).path
        urls = {"direct": direct}
        nginx = {"PROXY_ROUTES": "8002=ticket-service:8000", "PROXY_WORKER_PROCESSES": "1", **proxy_env}
        edges = {
            "proxy": (WRK_CPU, {"image": proxy_image, "environment": nginx}),
            "proxy_shared": (SERVER_CPU, {"image": proxy_image, "environment": nginx}),
            "per_request": (WRK_CPU, {"image": proxy_image, "environment": {**nginx, **NO_REUSE}}),
        }
        if haproxy_image:
            edges["haproxy"] = (
                WRK_CPU,
                {
                    "image": haproxy_image,
                    "command": ["haproxy", "-db", "-f", "/etc/haproxy/bench.cfg"],
                    "user": "nobody",
                    "volumes": {str(HAPROXY_CONFIG): {"bind": "/etc/haproxy/bench.cfg", "mode": "ro"}},
                },
            )
        for mode, (cpu, options) in edges.items():
            # Its HEALTHCHECK's process every 5 s would land on the measured CPUs: readiness is polled instead.
            proxy = client.containers.run(
                **options,
                detach=True,
                read_only=True,
                tmpfs={"/tmp": "size=64m"},
                network=network.name,
                cpuset_cpus=cpu,
                healthcheck={"test": ["NONE"]},
            )
            containers.append(proxy)
            proxy.reload()
            address = proxy.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
            urls[mode] = f"http://{address}:8002{path}"
            wait_answering(urls[mode], token)
        edge_host = urlsplit(urls["proxy"]).hostname
        for url in urls.values():
            wrk(url, token, ROUND, WRK_CPU)  # warm-up: workers loaded, connections open
        modes = [*urls, "slow"]
        runs: dict[str, dict[str, list[float]]] = {m: {"rps": [], "p99_ms": []} for m in modes}
        ratios: dict[str, list[float]] = {name: [] for name, (mode, _) in RATIOS.items() if mode in urls}
        slow_p99: list[float] = []
        for done in range(1, MAX_ROUNDS + 1):
            modes = modes[1:] + modes[:1] if done % 2 else modes[::-1]  # every position, both directions
            rps = {}
            for mode in modes:
                if mode == "slow":
                    with SlowClients(edge_host, 8002, SLOW):
                        rps[mode], p99 = wrk(urls["proxy"], token, ROUND, WRK_CPU)
                else:
                    rps[mode], p99 = wrk(urls[mode], token, ROUND, WRK_CPU)
                runs[mode]["rps"].append(rps[mode])
                runs[mode]["p99_ms"].append(p99)
            for name, values in ratios.items():
                mode, baseline = RATIOS[name]
                values.append(rps[mode] / rps[baseline])
            slow_p99.append(runs["slow"]["p99_ms"][-1] / runs["proxy"]["p99_ms"][-1])
            if done >= MIN_ROUNDS and all(spread(ratios[name])["ci95_width"] <= PRECISION for name in TARGETED):
                break
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
    out: dict = {mode: {k: summary(v) for k, v in values.items()} for mode, values in runs.items()}
    out["rounds"] = done
    out["ratios"] = {name: spread(values) for name, values in ratios.items()}
    out["per_round"] = {name: [round(v, 4) for v in values] for name, values in ratios.items()}
    for name, values in ratios.items():
        out[name] = out["ratios"][name]["median"]
        out[f"{name}_rounds"] = summary(values)
    out["slow_vs_idle_p99"] = statistics.median(slow_p99)
    out["slow_vs_idle_p99_rounds"] = summary(slow_p99)
    out["slow_connections"] = SLOW
    out["settings"] = {
        "wrk": f"-t1 -c{CONNECTIONS} -d{ROUND} per mode per round, on CPU {WRK_CPU}, to each container's own address",
        "service": f"ticket-service (image defaults, no max_requests recycling) on CPU {SERVER_CPU}",
        "proxy": f"one nginx worker on CPU {WRK_CPU} (wrk's); proxy_shared: on CPU {SERVER_CPU} (the service's); "
        f"per_request: on CPU {WRK_CPU} with {NO_REUSE}",
        "haproxy": f"bench/haproxy/{HAPROXY_CONFIG.name} on CPU {WRK_CPU}" if haproxy_image else "not run",
        "rounds": f"{MIN_ROUNDS} to {MAX_ROUNDS}, until each ratio median's 95% confidence interval "
        f"is at most {PRECISION} wide",
    }
    out["image"] = image_size(client, proxy_image, root_image)
    return out
