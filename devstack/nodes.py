"""A local multi-node swarm (tools/swarm-nodes) as the tests and the benchmarks drive it.

Each node is a Docker Engine in a container of this engine, reached on its own Unix socket; faults are this
engine's own verbs on those containers (``docker kill``, ``docker start``), the swarm's are the nodes' API
(drain, leader). The stack on it is deployed with tools/swarm and compose/stack.yaml, images by digest from the
nodes' registry. ``Load`` runs devstack/loadclient.py on this machine against one node's edge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import docker

from devstack import ROOT, SERVICES

__all__ = ["Load", "Nodes", "image_variables", "rebuild_on_new_base", "wait_for"]

#: Generous bound for a node to start, the stack to converge or a node's tasks to move, on a busy 2-core machine.
WAIT = 300
#: The stack's services and the replicas each runs: 0 is one per node (global).
REPLICAS = {
    "postgres": 1,
    "user-service": 2,
    "ticket-service": 2,
    "ticket-worker": 2,
    "communication-service": 2,
    "file-service": 2,
    "proxy": 0,
}


def image_variables(images: dict[str, str]) -> dict[str, str]:
    """tools/swarm's variables for ``images`` (service → reference): ``user-service`` → ``USER_SERVICE_IMAGE``."""
    return {name.upper().replace("-", "_") + "_IMAGE": ref for name, ref in images.items()}


def rebuild_on_new_base(base: str, run: str) -> dict[str, str]:
    """The services rebuilt FROM a new base image: ``base`` with one more label, so every digest is new, as
    after a base image release. Returns service → tag; the new base is tagged ``<base>-rebuilt-<run>``."""

    def build(*args: str, dockerfile: str | None = None) -> None:
        done = subprocess.run(
            ["docker", "build", "--quiet", *args], input=dockerfile, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"docker build {' '.join(args)}: {done.stderr[-2000:]}")

    new_base = f"{base}-rebuilt-{run}"
    build("--tag", new_base, "-", dockerfile=f"FROM {base}\nLABEL io.shared-core.rebuilt={run}\n")
    tags = {s: f"shared-core/{s}:rebuilt-{run}" for s in SERVICES}
    for s, tag in tags.items():
        build("--tag", tag, "--build-arg", f"BASE_IMAGE={new_base}", str(ROOT / "services" / s))
    return tags


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` every 0.2 s until it returns something true, which is returned; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (docker.errors.APIError, docker.errors.DockerException, OSError):
            value = None  # an engine that is starting, or a manager between leaders
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


class Nodes:
    """``count`` nodes named ``name``: the first three managers, the rest workers; node ``count`` or 3 has db=true."""

    def __init__(self, name: str, count: int = 3, image: str | None = None) -> None:
        self.name, self.count = name, count
        self.host = docker.from_env()
        self.env = {"NODES_NAME": name, "NODES": str(count), **({"NODE_IMAGE": image} if image else {})}
        self.env_of: dict[str, str] = {}
        self.engines: dict[int, docker.DockerClient] = {}

    def tool(self, *args: str, env: dict[str, str] | None = None, timeout: float = WAIT * 3) -> str:
        """``tools/swarm-nodes ARGS``: its standard output; RuntimeError with its last words when it fails."""
        done = subprocess.run(
            [str(ROOT / "tools" / "swarm-nodes"), *args],
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if done.returncode:
            raise RuntimeError(f"tools/swarm-nodes {' '.join(args)}: {done.stderr[-3000:]}")
        return done.stdout

    def up(self) -> Nodes:
        out = self.tool("up")
        self.env_of = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return self

    def down(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.tool("down")

    @property
    def addresses(self) -> list[str]:
        return self.env_of["NODE_ADDRESSES"].split()

    def hostname(self, k: int) -> str:
        return f"node{k}"

    def container(self, k: int) -> Any:
        """Node ``k``'s container on this engine."""
        return self.host.containers.get(f"{self.name}-node{k}")

    def socket(self, k: int) -> str:
        """Where node ``k``'s engine answers (tools/swarm-nodes puts it there)."""
        return f"unix:///tmp/{self.name}/node{k}/docker.sock"

    def engine(self, k: int) -> docker.DockerClient:
        """Node ``k``'s own engine: one client per node, which reconnects when the node has restarted."""
        if k not in self.engines:
            self.engines[k] = docker.DockerClient(base_url=self.socket(k), timeout=30)
        return self.engines[k]

    def container_of(self, task: dict[str, Any]) -> Any:
        """The container of a running ``task``, on the node that runs it."""
        node = self.manager()[1].nodes.get(task["NodeID"])
        k = int(node.attrs["Description"]["Hostname"].removeprefix("node"))
        return self.engine(k).containers.get(task["Status"]["ContainerStatus"]["ContainerID"])

    def manager(self) -> tuple[int, docker.DockerClient]:
        """The leader's number and engine; waits while the managers elect one."""

        def leader() -> tuple[int, docker.DockerClient] | None:
            for k in range(1, min(self.count, 3) + 1):
                if self.container(k).status != "running":
                    continue
                engine = self.engine(k)
                for node in engine.nodes.list(filters={"role": "manager"}):
                    if node.attrs.get("ManagerStatus", {}).get("Leader"):
                        return int(node.attrs["Description"]["Hostname"].removeprefix("node")), engine
            return None

        found: tuple[int, docker.DockerClient] = wait_for(leader, WAIT, "a leader among the managers")
        return found

    def node(self, k: int) -> dict[str, Any]:
        """Node ``k`` as the swarm sees it (Status.State ready/down, Spec.Availability active/drain)."""
        attrs: dict[str, Any] = self.manager()[1].nodes.get(self.hostname(k)).attrs
        return attrs

    def kill(self, k: int) -> None:
        """SIGKILL node ``k``'s container: the machine is gone, its engine and every container on it at once."""
        self.container(k).kill()

    def start(self, k: int) -> None:
        """Start node ``k`` again and wait until the swarm counts it ready."""
        self.container(k).start()
        wait_for(lambda: self.node(k)["Status"]["State"] == "ready", WAIT, f"node{k} ready again")

    def availability(self, k: int, availability: str) -> None:
        """Set node ``k`` to ``active``, ``drain`` or ``pause``."""
        node = self.manager()[1].nodes.get(self.hostname(k))
        node.update({**node.attrs["Spec"], "Availability": availability})

    def swarm(self, *args: str, env: dict[str, str] | None = None) -> float:
        """``tools/swarm ARGS`` against the leader, with the nodes' shared storage; the seconds it took."""
        started = time.monotonic()
        k, _ = self.manager()
        done = subprocess.run(
            [str(ROOT / "tools" / "swarm"), *args],
            env={
                **os.environ,
                **(env or {}),
                "DOCKER_HOST": self.socket(k),
                "FILE_DATA_DEVICE": self.env_of["FILE_DATA_DEVICE"],
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=WAIT * 3,
        )
        if done.returncode:
            raise RuntimeError(f"tools/swarm {' '.join(args)}: {done.stderr[-3000:]}")
        return time.monotonic() - started

    def publish(self, images: dict[str, str]) -> dict[str, str]:
        """Push this engine's images (service → tag) to the nodes' registry: service → reference by digest."""
        refs = self.tool("publish", *images.values()).split()
        return dict(zip(images, refs, strict=True))

    def tasks(self, stack: str, service: str) -> list[dict[str, Any]]:
        """The service's tasks that run now, as the leader sees them."""
        tasks = self.manager()[1].services.get(f"{stack}_{service}").tasks(filters={"desired-state": "running"})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def placement(self, stack: str, service: str) -> Counter[str]:
        """How many of the service's running tasks each node holds: {hostname: tasks}."""
        engine = self.manager()[1]
        names = {n.id: n.attrs["Description"]["Hostname"] for n in engine.nodes.list()}
        return Counter(names[t["NodeID"]] for t in self.tasks(stack, service))

    def full(self, stack: str) -> bool:
        """Every service runs all its replicas on nodes the swarm counts ready, and a proxy on each such node."""
        nodes = self.manager()[1].nodes.list()
        ready = {n.id for n in nodes if n.attrs["Status"]["State"] == "ready"}
        available = {n.id for n in nodes if n.id in ready and n.attrs["Spec"]["Availability"] == "active"}
        for service, replicas in REPLICAS.items():
            on = [t["NodeID"] for t in self.tasks(stack, service) if t["NodeID"] in ready]
            if (len(on) != replicas) if replicas else (set(on) != available):
                return False
        return True

    def wait_full(self, stack: str) -> float:
        """Wait until ``full``; the seconds it took."""
        started = time.monotonic()
        wait_for(lambda: self.full(stack), WAIT, f"stack {stack} at full replicas")
        return time.monotonic() - started

    def psql(self, stack: str, database: str, sql: str) -> list[str]:
        """Rows of ``sql`` in ``database``, read in the PostgreSQL task's container on its node."""
        (task,) = self.tasks(stack, "postgres")
        code, out = self.container_of(task).exec_run(
            ["psql", "-h", "/tmp", "-U", "postgres", "-d", database, "-tA", "-c", sql]
        )
        if code:
            raise RuntimeError(out.decode(errors="replace"))
        return [line for line in out.decode().splitlines() if line]


class Load:
    """devstack/loadclient.py on this machine against node ``address``'s edge, until ``finish()``."""

    def __init__(self, address: str, token: str, requester: str, marker: str | None = None) -> None:
        self.marker = marker or f"load-{uuid.uuid4().hex[:10]}"
        url = f"http://{address}:8002"
        # The client's warnings, in a file that lives as long as this Load: a pipe nobody reads would fill.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "devstack" / "loadclient.py")],
            env={
                **os.environ,
                "TOKEN": token,
                "REQUESTER": requester,
                "MARKER": self.marker,
                "MAX_SECONDS": "900",
                "TICKETS_URL": url,
                "EDGE_URL": url,
                "PYTHONPATH": str(ROOT),  # shared_core from this tree
            },
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        wait_for(lambda: "started" in self.errors() or self.process.poll() is not None, 60, "the client loop started")
        if self.process.poll() is not None:
            raise RuntimeError(f"the client loop did not start: {self.errors()[-2000:]}")

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def finish(self) -> dict[str, Any]:
        """SIGTERM: the loop ends its round and reports its calls, failures and the keys it created."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=120)
        errors = self.errors()
        self.log.close()
        if self.process.returncode or not out.strip():
            raise RuntimeError(f"client loop exited {self.process.returncode}: {errors[-2000:]}")
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report

    def stored(self, nodes: Nodes, stack: str) -> dict[str, int]:
        """Tickets stored per key of this loop: {title: rows}."""
        rows = nodes.psql(
            stack,
            "ticket_service",
            "SELECT title, count(*) FROM ticket_service_ticket "
            f"WHERE title LIKE '{self.marker}-%' GROUP BY title",  # the marker is ours: hex and a dash
        )
        return {title: int(n) for title, n in (row.split("|") for row in rows)}
