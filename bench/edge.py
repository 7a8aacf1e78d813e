"""The edge proxy: its cost on a read, its p99 while slow clients are held, and what its image adds.

One ticket-service container (image defaults) with the proxy in front of it on a private network;
wrk measures the same read direct to gunicorn and through the proxy, interleaved.
"""

from __future__ import annotations

import secrets
import socket
import statistics
import threading
import time
import uuid
from contextlib import suppress
from urllib.parse import urlsplit

import docker

from bench.stats import summary
from bench.throughput import start, wrk

#: Slow connections held against the proxy while wrk measures (half trickle headers, half bodies).
SLOW = 256
#: Rounds of direct, proxy, proxy-with-slow-clients; each round gives its own ratios.
ROUNDS = 5


def installed(client: docker.DockerClient, image: str) -> dict[str, int]:
    """Package name to installed bytes, from dpkg's database in ``image``."""
    listing = client.containers.run(
        image, ["dpkg-query", "-W", "-f", "${Package} ${Installed-Size}\\n"], entrypoint=[], remove=True
    )
    return {name: int(size) * 1024 for name, size in (line.split() for line in listing.decode().splitlines())}


def image_size(client: docker.DockerClient, proxy: str, root: str) -> dict:
    """The proxy image's size, and what nginx and its packages add over the project's Debian root."""
    ours = installed(client, proxy)
    base = installed(client, root)
    added = {name: size for name, size in ours.items() if name not in base}
    return {
        "proxy_image_mb": client.images.get(proxy).attrs["Size"] / 1e6,
        "added_over_root_mb": sum(added.values()) / 1e6,
        "added_packages": sorted(added),
    }


def wait_healthy(container, within: float = 60.0) -> None:
    """Until the container's HEALTHCHECK passes (at most ``within`` seconds)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.2)
    raise RuntimeError(f"{container.name} not healthy:\n{container.logs().decode()}")


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


def run(service_image: str, proxy_image: str, root_image: str, **proxy_env: str) -> dict:
    client = docker.from_env()
    token = secrets.token_urlsafe(24)
    network = client.networks.create(f"bench-edge-{uuid.uuid4().hex[:8]}")
    containers = []
    try:
        # No worker recycling: a Django worker booting every 1,000 requests would swamp the differences measured.
        service, direct = start(client, service_image, token, bare=False, GUNICORN_MAX_REQUESTS="0")
        containers.append(service)
        network.connect(service, aliases=["ticket-service"])
        service.reload()  # Docker 20.10 gives a random host port anew when a network is connected
        published = service.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        direct = f"http://127.0.0.1:{published}{urlsplit(direct).path}"
        proxy = client.containers.run(
            proxy_image,
            detach=True,
            read_only=True,
            tmpfs={"/tmp": "size=64m"},
            network=network.name,
            environment={"PROXY_ROUTES": "8002=ticket-service:8000", **proxy_env},
            ports={"8002/tcp": ("127.0.0.1", None)},
        )
        containers.append(proxy)
        wait_healthy(proxy)
        port = int(proxy.attrs["NetworkSettings"]["Ports"]["8002/tcp"][0]["HostPort"])
        path = urlsplit(direct).path
        edge = f"http://127.0.0.1:{port}{path}"
        wrk(direct, token)  # warm-up
        wrk(edge, token)
        runs: dict[str, dict[str, list[float]]] = {m: {"rps": [], "p99_ms": []} for m in ("direct", "proxy", "slow")}
        for _ in range(ROUNDS):  # interleaved, so drift on a shared machine hits every mode alike
            for mode, url in (("direct", direct), ("proxy", edge)):
                rps, p99 = wrk(url, token)
                runs[mode]["rps"].append(rps)
                runs[mode]["p99_ms"].append(p99)
            with SlowClients("127.0.0.1", port, SLOW):
                rps, p99 = wrk(edge, token)
            runs["slow"]["rps"].append(rps)
            runs["slow"]["p99_ms"].append(p99)
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
    out: dict = {mode: {k: summary(v) for k, v in values.items()} for mode, values in runs.items()}
    per_round = {
        "proxy_vs_direct_rps": [p / d for p, d in zip(runs["proxy"]["rps"], runs["direct"]["rps"], strict=True)],
        "slow_vs_idle_p99": [s / i for s, i in zip(runs["slow"]["p99_ms"], runs["proxy"]["p99_ms"], strict=True)],
    }
    for name, ratios in per_round.items():
        out[name] = statistics.median(ratios)
        out[f"{name}_rounds"] = summary(ratios)
    out["slow_connections"] = SLOW
    out["image"] = image_size(client, proxy_image, root_image)
    return out
