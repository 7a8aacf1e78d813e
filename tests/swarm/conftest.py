"""The Swarm suite's configuration: the real stack (compose/stack.yaml) deployed by tools/swarm, once per run.

Black-box: nothing here imports project code. `make test-swarm` builds the images of this tree (version N)
and runs the suite beside a throwaway registry (REGISTRY). The suite builds version N+1 of the base image
with its own recipe (Dockerfile.base, the next patch version), the services FROM it, and a broken service
image. It deploys under a per-run stack name on random host ports, and leaves the engine as it found it:
the stack, its secrets and its images removed, and the swarm left if the suite created it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container

from devstack import ROOT, SERVICES, free_port, throwaway_secrets
from shared_core.pytest_plugin import eventually

#: Every service of the stack a rollout moves (ticket-worker runs ticket-service's image).
ROLLED = (*SERVICES, "ticket-worker")
#: Generous bound for the stack, a rollout or a replacement on a busy 2-core machine.
SWARM_WAIT = 300
#: The HEALTHCHECK's start period in this stack: how long a broken replica may stay unhealthy before it counts.
START_PERIOD = "20s"


def build(*args: str) -> str:
    """``docker build --quiet ARGS``: the image id."""
    done = subprocess.run(["docker", "build", "--quiet", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Release:
    """One version of the system: an image per stack service (tags; tools/swarm deploys them by digest)."""

    images: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # service -> reference by digest, once published

    def env(self) -> dict[str, str]:
        """tools/swarm's *_IMAGE variables."""
        named = {
            "user-service": "USER_SERVICE",
            "ticket-service": "TICKET_SERVICE",
            "communication-service": "COMMUNICATION_SERVICE",
            "file-service": "FILE_SERVICE",
            "proxy": "PROXY",
            "postgres": "POSTGRES",
        }
        return {f"{named[name]}_IMAGE": self.refs.get(name, image) for name, image in self.images.items()}


class Swarm:
    """The deployed stack: tools/swarm, the Docker API, and a client loop on the overlay network."""

    def __init__(self, client: docker.DockerClient, stack: str, env: dict[str, str], ports: dict[str, int]) -> None:
        self.client, self.stack, self.env, self.ports = client, stack, env, ports
        self.token = env["OPERATOR_TOKEN"]
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def tool(self, command: str, release: Release, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``tools/swarm COMMAND`` with ``release``'s images; output captured for the failure message."""
        done = subprocess.run(
            [str(ROOT / "tools" / "swarm"), command],
            env={**os.environ, **self.env, **release.env()},
            capture_output=True,
            text=True,
            check=False,
            timeout=SWARM_WAIT * 3,
        )
        if check:
            assert done.returncode == 0, f"tools/swarm {command}: {done.stderr[-3000:]}"
        return done

    def service(self, name: str) -> Any:
        return self.client.services.get(f"{self.stack}_{name}")

    def running(self, name: str) -> list[dict[str, Any]]:
        """The service's tasks that run now (state running), with their container ids and images."""
        tasks = self.service(name).tasks(filters={"desired-state": "running"})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def images_of(self, name: str) -> set[str]:
        return {t["Spec"]["ContainerSpec"]["Image"] for t in self.running(name)}

    def containers(self, name: str) -> list[Container]:
        return [self.client.containers.get(t["Status"]["ContainerStatus"]["ContainerID"]) for t in self.running(name)]

    def converged(self, name: str, replicas: int = 2) -> bool:
        """``replicas`` tasks run, each healthy, and no other task of the service is starting."""
        tasks = self.service(name).tasks(filters={"desired-state": "running"})
        if len(tasks) != replicas or any(t["Status"]["State"] != "running" for t in tasks):
            return False
        states = [
            self.client.containers.get(t["Status"]["ContainerStatus"]["ContainerID"]).attrs["State"] for t in tasks
        ]
        return all(s.get("Health", {}).get("Status") == "healthy" for s in states)

    def url(self, service: str, path: str) -> str:
        """``path`` of ``service`` through the edge proxy's host-mode port on 127.0.0.1."""
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def routed(self, service: str) -> bool:
        """Whether the edge reaches a ready replica of ``service`` (its /readyz answers 200 through the edge)."""
        try:
            return requests.get(self.url(service, "/readyz"), timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def psql(self, database: str, sql: str, value: str) -> list[str]:
        """Rows of ``sql`` in ``database`` (one per line, |-separated), where ``:'value'`` is ``value`` quoted by psql.

        Read in the PostgreSQL task's container; the query goes in on standard input, where psql interpolates.
        """
        (postgres,) = self.containers("postgres")
        script = 'printf "%s" "$SQL" | psql -h /tmp -U postgres -d "$DATABASE" -tA -v ON_ERROR_STOP=1 -v value="$VALUE"'
        code, out = postgres.exec_run(
            ["sh", "-c", script], environment={"SQL": sql, "DATABASE": database, "VALUE": value}
        )
        assert code == 0, out.decode(errors="replace")
        return [line for line in out.decode().splitlines() if line]

    def new_user(self) -> str:
        body = {"email": f"{uuid.uuid4().hex}@example.com", "name": "Swarm"}
        response = requests.post(self.url("user-service", "/api/users/"), json=body, headers=self.auth, timeout=30)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def load(self, requester: str) -> Load:
        """Start the client loop (devstack/loadclient.py) in a container on the stack's overlay network."""
        marker = f"load-{uuid.uuid4().hex[:10]}"
        image = self.env["CLIENT_IMAGE"]
        container = self.client.containers.run(
            image,
            ["python3", "/load/loadclient.py"],
            entrypoint=[],
            detach=True,
            read_only=True,
            network=f"{self.stack}_backend",
            name=f"{self.stack}-load-{marker}",
            environment={
                "TOKEN": self.token,
                "REQUESTER": requester,
                "MARKER": marker,
                "MAX_SECONDS": "900",
                "DJANGO_SETTINGS_MODULE": "",
            },
            volumes={str(ROOT / "devstack"): {"bind": "/load", "mode": "ro"}},
            labels={"com.shared-core.swarm-test": self.stack},
            healthcheck={"test": ["NONE"]},  # a client, not a service
        )
        eventually(
            lambda: b"started" in container.logs(),
            60,
            "the client loop started",
            lambda: container.logs().decode(errors="replace"),
        )
        return Load(self, container, marker)


@dataclass
class Load:
    """A running client loop; ``finish()`` stops it and returns its report."""

    swarm: Swarm
    container: Container
    marker: str

    def finish(self) -> dict[str, Any]:
        """SIGTERM: the loop ends its round and prints its report (calls, failures, keys it created)."""
        self.container.kill(signal="SIGTERM")
        status = self.container.wait(timeout=120)
        out = self.container.logs(stderr=False).decode(errors="replace").strip().splitlines()
        self.container.remove(force=True)
        assert status["StatusCode"] == 0 and out, f"client loop exited {status}: {out[-5:]}"
        report: dict[str, Any] = json.loads(out[-1])
        assert report["calls"] > 0, report
        return report

    def stored(self) -> dict[str, int]:
        """Tickets stored per key of this loop: {title: rows}."""
        rows = self.swarm.psql(
            "ticket_service",
            "SELECT title, count(*) FROM ticket_service_ticket WHERE title LIKE :'value' || '-%' GROUP BY title",
            self.marker,
        )
        return {title: int(n) for title, n in (row.split("|") for row in rows)}

    def assert_clean(self, report: dict[str, Any]) -> None:
        """0 failed requests; every created key stored exactly once; nothing stored that was not acknowledged."""
        assert report["failures"] == [], report["failures"][:10]
        stored = self.stored()
        assert {k: n for k, n in stored.items() if n != 1} == {}, "a retried POST was stored twice"
        assert set(stored) == set(report["created"]), "stored and acknowledged tickets differ"


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def releases(engine: docker.DockerClient) -> Iterator[dict[str, Release]]:
    """Version N (this tree's images, built by make), N+1 (the next base version, built here) and a broken one."""
    base = os.environ.get("SHARED_CORE_BASE_IMAGE")
    if not base or not os.environ.get("REGISTRY"):
        pytest.fail("SHARED_CORE_BASE_IMAGE and REGISTRY are not set: run the suite with `make test-swarm`")
    version = base.rsplit(":", 1)[-1]
    major, minor, patch = version.split(".")
    following = f"{major}.{minor}.{int(patch) + 1}"
    run = uuid.uuid4().hex[:8]
    current = Release(
        {
            **{s: f"shared-core/{s}:{version}" for s in SERVICES},
            "proxy": f"shared-core/proxy:{version}",
            "postgres": f"shared-core/postgres:{version}",
        }
    )
    next_base = f"shared-core/base:{following}-swarmtest-{run}"
    build(
        "--file",
        str(ROOT / "Dockerfile.base"),
        "--target",
        "base",
        "--tag",
        next_base,
        "--build-arg",
        f"ROOT_IMAGE={os.environ.get('ROOT_IMAGE', 'shared-core/root:trixie')}",
        "--build-arg",
        f"VERSION={following}",
        "--build-arg",
        f"REVISION=swarmtest-{run}",
        str(ROOT),
    )
    tags = [next_base]
    following_images = dict(current.images)
    for s in SERVICES:
        tag = f"shared-core/{s}:{following}-swarmtest-{run}"
        build("--tag", tag, "--build-arg", f"BASE_IMAGE={next_base}", str(ROOT / "services" / s))
        following_images[s] = tag
        tags.append(tag)
    # Listens where nothing probes it: it runs, and never turns healthy.
    broken = f"shared-core/ticket-service:broken-swarmtest-{run}"
    dockerfile = f'FROM {following_images["ticket-service"]}\nENV GUNICORN_CMD_ARGS="--bind 0.0.0.0:8999"\n'
    done = subprocess.run(
        ["docker", "build", "--quiet", "--tag", broken, "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    tags.append(broken)
    yield {
        "current": current,
        "next": Release(following_images),
        "broken": Release({**current.images, "ticket-service": broken}),
    }
    # What this run added: its own tags, and every tag and digest reference in the throwaway registry.
    registry = f"{os.environ['REGISTRY']}/"
    for image in engine.images.list():
        refs = [r for r in image.tags + image.attrs.get("RepoDigests", []) if r.startswith(registry) or r in tags]
        for ref in refs:
            eventually(lambda ref=ref: remove_image(engine, ref), 60, f"{ref} removed (no container uses it)")


def remove_image(engine: docker.DockerClient, ref: str) -> bool:
    """Remove ``ref``; False while a container the swarm is still removing uses it."""
    try:
        engine.images.remove(ref)
    except docker.errors.NotFound:
        pass  # gone with an earlier reference of the same image
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise
        return False
    return True


@pytest.fixture(scope="session")
def swarm(engine: docker.DockerClient, releases: dict[str, Release]) -> Iterator[Swarm]:
    """Version N deployed as a stack with tools/swarm; removed afterwards, leaving the engine as it was."""
    was = engine.info()["Swarm"]["LocalNodeState"]
    stack = f"scsw{uuid.uuid4().hex[:8]}"
    ports = {s: free_port() for s in SERVICES}
    env = {
        "STACK": stack,
        "SWARM_WAIT": str(SWARM_WAIT),
        "VOLUMES": "1",
        **throwaway_secrets(),
        "USER_PORT": str(ports["user-service"]),
        "TICKET_PORT": str(ports["ticket-service"]),
        "COMMUNICATION_PORT": str(ports["communication-service"]),
        "FILE_PORT": str(ports["file-service"]),
        "HEALTHCHECK_START_PERIOD": START_PERIOD,
        # A delivery to a paused neighbour is held for seconds: long enough to find and kill its worker.
        "HTTP_CLIENT_DEADLINE": "15",
        "OUTBOX_TASK_TIMEOUT": "20",
        "OUTBOX_RECOVER_AFTER": "25",
        "OUTBOX_BACKOFF_MAX": "2",
        "OUTBOX_MAX_ATTEMPTS": "1000",
        "CLIENT_IMAGE": releases["current"].images["ticket-service"],
    }
    deployed = Swarm(engine, stack, env, ports)
    current = releases["current"]
    try:
        deployed.tool("deploy", current)
        # Every replica is healthy now; the edge learns their addresses when it next resolves the names
        # (PROXY_RESOLVER_VALID), so the suite starts once the edge reaches each service.
        for service in SERVICES:
            eventually(lambda service=service: deployed.routed(service), SWARM_WAIT, f"the edge reaches {service}")
        for name in (*ROLLED, "proxy", "postgres"):
            (current.refs[name],) = deployed.images_of(name)
        yield deployed
    finally:
        for container in engine.containers.list(all=True, filters={"label": f"com.shared-core.swarm-test={stack}"}):
            container.remove(force=True)
        undeploy = deployed.tool("undeploy", current, check=False)
        left = {
            "services": engine.services.list(filters={"label": f"com.docker.stack.namespace={stack}"})
            if engine.info()["Swarm"]["LocalNodeState"] == "active"
            else [],
            "secrets": [
                s
                for s in (engine.secrets.list() if engine.info()["Swarm"]["LocalNodeState"] == "active" else [])
                if s.name.startswith(f"{stack}_")
            ],
            "containers": [
                c.name
                for c in engine.containers.list(all=True)
                if c.labels.get("com.docker.swarm.service.name", "").startswith(f"{stack}_")
            ],
            "volumes": engine.volumes.list(filters={"label": f"com.docker.stack.namespace={stack}"}),
            "swarm": engine.info()["Swarm"]["LocalNodeState"],
        }
        assert undeploy.returncode == 0, undeploy.stderr
        assert left == {"services": [], "secrets": [], "containers": [], "volumes": [], "swarm": was}, (
            f"the engine was not left as found: {left}"
        )


def wait_converged(swarm: Swarm, *names: str, replicas: int = 2) -> None:
    """Wait until each service runs ``replicas`` healthy tasks."""
    for name in names:
        eventually(
            lambda name=name: swarm.converged(name, replicas),
            SWARM_WAIT,
            f"{name} converged",
            lambda name=name: swarm.service(name).tasks(),
        )
