"""The Swarm stack (compose/stack.yaml) measured: replicas, a full rollout, and a replica's replacement.

tools/swarm deploys the stack under its own name with random ports; REGISTRY (make bench runs a throwaway
one) takes the images. wrk reads ticket-service through the edge proxy's host-mode port:
- with 1 and with 2 replicas, rounds interleaved (both on this machine's 2 cores, wrk included);
- during a rollout of the four services and the worker onto rebuilt images, and during the replacement of a
  killed replica: how long each took, and what wrk saw fail (non-2xx answers, socket errors).
The stack, its secrets, volumes and the rebuilt images are removed afterwards, and the swarm is left if the
deploy created it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter

import docker

from bench.stats import summary
from bench.throughput import wrk
from devstack import ROOT, SERVICES, free_port, throwaway_secrets

ROUND = "5s"
ROUNDS = 3
KILLS = 3
#: compose/stack.yaml's PROXY_RESOLVER_VALID: seconds the proxy keeps a DNS answer.
RESOLVER_VALID = 1


def tool(env: dict[str, str], *args: str) -> float:
    """``tools/swarm ARGS``; the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "tools" / "swarm"), *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"tools/swarm {' '.join(args)}: {done.stderr[-3000:]}")
    return time.monotonic() - started


def scale(stack: str, replicas: int) -> None:
    subprocess.run(
        ["docker", "service", "scale", "--detach", f"{stack}_ticket-service={replicas}"],
        check=True,
        capture_output=True,
    )


def running_containers(service) -> list[str]:
    """The container ids of the service's tasks that Swarm counts as running."""
    tasks = service.tasks(filters={"desired-state": "running"})
    return [t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks if t["Status"]["State"] == "running"]


class Load:
    """wrk through the proxy in the background until ``stop()``: what it sent, and what the proxy answered.

    wrk's own timeout is set above the proxy's, so every request ends with the proxy's answer; the answers
    that were not 200 are counted from the proxy's access log (499, wrk closing at the end, is not one).
    """

    def __init__(self, stack: str, url: str, token: str) -> None:
        self.stack, self.since = stack, time.time()
        self.process = subprocess.Popen(
            ["wrk", "-t1", "-c8", "-d3600s", "--timeout", "60s", "-H", f"Authorization: Bearer {token}", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        out, _ = self.process.communicate(timeout=60)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        value, unit = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out).groups()
        logs = subprocess.run(
            ["docker", "service", "logs", "--raw", "--since", str(int(self.since)), f"{self.stack}_proxy"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        statuses = Counter(re.findall(r'HTTP/1\.1" (\d{3}) ', logs))
        failed = [line for line in logs.splitlines() if re.search(r'HTTP/1\.1" (?!200 |499 )\d{3} ', line)]
        return {
            "requests": int(re.search(r"(\d+) requests in", out)[1]),
            "not_200": {code: n for code, n in statuses.items() if code not in ("200", "499")},
            "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
            if errors
            else {},
            "max_latency_s": float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit],
            # What the proxy logged for them: its answer, time taken, and what each upstream attempt got.
            "not_200_lines": sorted({re.sub(r".*HTTP/1\.1", "", line)[:120] for line in failed})[:10],
        }


def run(version: str) -> dict:
    engine = docker.from_env()
    stack = f"benchsw{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        "STACK": stack,
        "VERSION": version,
        "VOLUMES": "1",
        "TICKET_PORT": str(port),
        **{p: str(free_port()) for p in ("USER_PORT", "COMMUNICATION_PORT", "FILE_PORT")},
        **throwaway_secrets(),
        "GUNICORN_ACCESS_LOG": "0",
    }
    token, url = env["OPERATOR_TOKEN"], f"http://127.0.0.1:{port}/api/tickets/?limit=1"
    run_id = uuid.uuid4().hex[:8]
    rebuilt = []
    try:
        deploy_s = tool(env, "deploy")
        service = engine.services.get(f"{stack}_ticket-service")
        wrk(url, token, "3s")  # warm-up
        rps: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(ROUNDS):
            for replicas in (2, 1):
                scale(stack, replicas)
                tool(env, "wait")
                rps[replicas].append(wrk(url, token, ROUND)[0])
        scale(stack, 2)
        tool(env, "wait")

        # A full rollout: every service rebuilt (a new label, so a new digest) and rolled one replica at a time.
        images = {}
        for s in SERVICES:
            tag = f"shared-core/{s}:bench-{run_id}"
            subprocess.run(
                [
                    "docker",
                    "build",
                    "--quiet",
                    "--label",
                    f"io.shared-core.bench={run_id}",
                    "--tag",
                    tag,
                    "--build-arg",
                    f"BASE_IMAGE=shared-core/base:{version}",
                    str(ROOT / "services" / s),
                ],
                check=True,
                capture_output=True,
            )
            rebuilt.append(tag)
            images[f"{s.replace('-', '_').upper()}_IMAGE"] = tag
        load = Load(stack, url, token)
        rollout_s = tool({**env, **images}, "rollout")
        during_rollout = load.stop()

        replaced = []
        load = Load(stack, url, token)
        for _ in range(KILLS):
            victim = running_containers(service)[0]
            started = time.monotonic()
            engine.containers.get(victim).kill()
            while victim in running_containers(service):  # until Swarm has seen it go: then wait for its replacement
                time.sleep(0.05)
            tool(env, "wait")
            replaced.append(time.monotonic() - started)
            # The proxy re-resolves the name once a second (PROXY_RESOLVER_VALID): killing the other replica
            # within that second would leave it with the victim as the only address it knows.
            time.sleep(RESOLVER_VALID + 1)
        during_kills = load.stop()
    finally:
        tool(env, "undeploy")
        for image in engine.images.list():  # the rebuilt images, under their own and the registry's tags
            for ref in [t for t in image.tags if run_id in t]:
                engine.images.remove(ref)
    return {
        "deploy_s": deploy_s,
        "rps_1_replica": summary(rps[1]),
        "rps_2_replicas": summary(rps[2]),
        "two_vs_one": summary([b / a for a, b in zip(rps[1], rps[2], strict=True)]),
        "rollout_s": rollout_s,
        "during_rollout": during_rollout,
        "replace_killed_replica_s": summary(replaced),
        "during_kills": during_kills,
        "wrk": f"-t1 -c16 -d{ROUND} per replica count per round, {ROUNDS} rounds; "
        "-t1 -c8 --timeout 60s during the rollout and the kills",
    }
