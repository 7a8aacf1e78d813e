"""pytest fixtures for a service's containerized tests: its Compose stack, real faults, and a fake neighbour.

Installed with ``pip install shared-core[testing]``, pytest loads it by itself (entry point
``pytest11``); elsewhere ``-p shared_core.pytest_plugin``. A suite says which Compose files make its
stack and which variables hold per-run secrets, in its conftest::

    @pytest.fixture(scope="session")
    def compose_files() -> list[str]:
        return ["compose.yaml"]

    @pytest.fixture(scope="session")
    def compose_secrets() -> list[str]:
        return ["DJANGO_SECRET_KEY", "SERVICE_AUTH_TOKEN"]

and a test takes ``compose_stack``: the stack built and started once per run under a project name of
its own, every container healthy, removed with its volumes at the end. Publish container ports to
random host ports (``"127.0.0.1::8000"`` or ``"127.0.0.1:${PORT:-}:8000"`` with ``PORT`` empty) so two
runs never collide; ``compose_stack.url("inventory-service")`` finds the one Docker chose. It runs
``docker compose`` (v2) where it exists, else ``docker-compose`` (v1), through pytest-docker.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

import pytest

from shared_core.testing import Upstream, reset_resilience

if TYPE_CHECKING:
    import requests
    from docker import DockerClient
    from docker.models.containers import Container

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_HEALTHY_WITHIN",
    "DEFAULT_IMAGE_HINT",
    "ComposeStack",
    "compose_command",
    "compose_env",
    "compose_files",
    "compose_image_hint",
    "compose_project",
    "compose_secrets",
    "compose_stack",
    "compose_stack_class",
    "compose_token",
    "eventually",
    "fresh_resilience",
    "missing_images",
    "upstream_server",
]

#: Seconds a container may take to report healthy (a busy 2-core machine builds and starts slowly).
DEFAULT_HEALTHY_WITHIN: Final = 180.0
#: Seconds ``ComposeStack.call`` waits for an answer unless it is given ``timeout=``.
DEFAULT_CALL_TIMEOUT: Final = 30.0
#: What the failure for an image the stack needs and this engine lacks says to do, unless a suite says better.
DEFAULT_IMAGE_HINT: Final = "build it here, or name a registry that has it in its reference"

T = TypeVar("T")


def eventually(check: Callable[[], T | None], within: float, what: str, state: Callable[[], object] | None = None) -> T:
    """Poll ``check`` every 0.25 s until it returns something truthy (returned), for at most ``within`` s.

    On timeout the ``AssertionError`` shows ``state()`` (what was seen), or the last outcome.
    """
    give_up = time.monotonic() + within
    while not (outcome := check()):
        if time.monotonic() > give_up:
            raise AssertionError(f"{what}: not within {within} s (last: {state() if state else outcome!r})")
        time.sleep(0.25)
    return outcome


class ComposeStack:
    """A running Compose project: its containers, their URLs on the host, and faults to inject into them."""

    def __init__(self, client: DockerClient, project: str, compose: Sequence[str], token: str | None = None) -> None:
        self.client, self.project, self.token = client, project, token
        self._compose = list(compose)

    def compose(self, *args: str) -> None:
        """Run a Compose command on this stack, with the environment as it is now."""
        subprocess.run([*self._compose, *args], check=True, capture_output=True, env=os.environ)  # noqa: S603

    def containers(self, service: str | None = None) -> list[Container]:
        """Every container of ``service`` (a scaled service has several), or of the whole stack when ``None``."""
        labels = [f"com.docker.compose.project={self.project}"]
        if service is not None:
            labels.append(f"com.docker.compose.service={service}")
        return list(self.client.containers.list(all=True, filters={"label": labels}))

    def container(self, service: str) -> Container:
        """The one container of ``service``."""
        (found,) = self.containers(service)
        return found

    def all_containers(self) -> list[Container]:
        return self.containers()

    def url(self, service: str, port: int = 8000) -> str:
        """``http://127.0.0.1:<host port>`` where the host reaches ``port`` of ``service``'s container."""
        container = self.container(service)
        container.reload()
        published = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
        return f"http://127.0.0.1:{published}"

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> requests.Response:
        """A call from the host to ``service`` (with the stack's token as a bearer token, when it has one).

        ``kwargs`` go to ``requests.request``; ``timeout`` is ``DEFAULT_CALL_TIMEOUT`` unless given.
        """
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        timeout = kwargs.pop("timeout", DEFAULT_CALL_TIMEOUT)
        return requests.request(method, self.url(service) + path, headers=headers, timeout=timeout, **kwargs)

    def ready(self, container: Container) -> bool:
        """Whether ``container`` counts as up: its healthcheck says healthy (a subclass may ask more)."""
        return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")

    def wait_healthy(self, *services: str, within: float = DEFAULT_HEALTHY_WITHIN) -> None:
        """Wait until every container of ``services`` (all when none) is ``ready``; fail naming one that is not."""
        give_up = time.monotonic() + within
        pending = [c for s in services for c in self.containers(s)] if services else self.all_containers()
        while pending:
            container = pending[0]
            container.reload()
            if self.ready(container):
                pending.pop(0)
                continue
            if time.monotonic() > give_up:
                raise AssertionError(f"{container.name} not healthy within {within} s: {container.attrs['State']}")
            time.sleep(0.25)

    def logs(self, service: str) -> str:
        return str(self.container(service).logs().decode(errors="replace"))

    def manage(self, service: str, code: str) -> str:
        """Run Python in ``service`` with Django set up (``manage.py shell -c``); its output."""
        result = self.container(service).exec_run(["python3", "manage.py", "shell", "-v", "0", "-c", code])
        assert result.exit_code == 0, result.output.decode()
        return str(result.output.decode().strip())

    # Faults, through the Docker API.

    def stop(self, service: str) -> None:
        """Stop ``service``'s containers (SIGTERM, then SIGKILL after their grace period)."""
        for container in self.containers(service):
            container.stop()

    def kill(self, service: str) -> None:
        """SIGKILL ``service``'s containers: no clean shutdown."""
        for container in self.containers(service):
            container.kill()

    def start(self, service: str) -> None:
        """Start ``service``'s stopped containers again and wait for them to be healthy."""
        for container in self.containers(service):
            container.start()
        self.wait_healthy(service)

    @contextmanager
    def paused(self, service: str) -> Iterator[None]:
        """``service`` frozen (SIGSTOP-like: connections stay open, nothing answers) inside the block."""
        containers = self.containers(service)
        for container in containers:
            container.pause()
        try:
            yield
        finally:
            for container in containers:
                container.unpause()

    @contextmanager
    def cut_off(self, service: str) -> Iterator[None]:
        """``service`` disconnected from every network of the stack inside the block, then reconnected."""
        container = self.container(service)
        container.reload()
        networks = dict(container.attrs["NetworkSettings"]["Networks"])
        for name in networks:
            self.client.networks.get(name).disconnect(container, force=True)
        try:
            yield
        finally:
            for name, settings in networks.items():
                aliases = [a for a in settings.get("Aliases") or [] if a != container.id[:12]]
                self.client.networks.get(name).connect(container, aliases=aliases)


@pytest.fixture(scope="session")
def compose_command() -> list[str]:
    """``SHARED_CORE_COMPOSE`` (``docker compose``, or a path to a Compose binary) when set; else ``docker compose``
    (v2) where it exists, else ``docker-compose`` (v1)."""
    chosen = os.environ.get("SHARED_CORE_COMPOSE", "").split()
    if chosen:
        return chosen
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)  # noqa: S607
    return ["docker", "compose"] if v2.returncode == 0 else ["docker-compose"]


@pytest.fixture(scope="session")
def compose_files() -> list[str]:
    """The Compose files of the stack under test; a suite overrides this fixture."""
    pytest.fail("override the compose_files fixture: the Compose files of your stack, e.g. ['compose.yaml']")


@pytest.fixture(scope="session")
def compose_project() -> str:
    """A fresh Compose project name per run, so two runs never collide."""
    return f"sc{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def compose_secrets() -> list[str]:
    """Variables the stack reads that get a fresh random value per run (none unless a suite overrides this)."""
    return []


@pytest.fixture(scope="session")
def compose_env(compose_secrets: list[str]) -> dict[str, str]:
    """The environment Compose runs with, besides the process's own: a random value per secret.

    Override it (taking ``compose_secrets`` and adding to it) for ports, versions and test settings.
    """
    return {name: secrets.token_urlsafe(32) for name in compose_secrets}


@pytest.fixture(scope="session")
def compose_token(compose_env: dict[str, str]) -> str | None:
    """The bearer token ``compose_stack.call`` sends: ``SERVICE_AUTH_TOKEN`` of the environment, if any."""
    return compose_env.get("SERVICE_AUTH_TOKEN")


@pytest.fixture(scope="session")
def compose_image_hint() -> str:
    """What to do about an image the stack runs that this engine lacks; a suite overrides it with its command."""
    return DEFAULT_IMAGE_HINT


def missing_images(compose: Sequence[str], client: DockerClient) -> list[str]:
    """The images ``compose`` (the command with its ``-p`` and ``-f`` arguments) runs that no service of it
    builds (``image:`` that no ``build:`` makes), with no registry host in their reference, that this engine
    lacks.

    An image whose reference names a registry (``registry.example:5000/shared-core/user-service:0.2.0``) is
    left for Compose to pull. A Compose that prints no configuration needs nothing.
    """
    import docker
    import yaml

    # The suite's own Compose command; one that cannot render its configuration is left to fail at ``up``.
    rendered = subprocess.run([*compose, "config"], capture_output=True, text=True, check=False)  # noqa: S603
    if rendered.returncode != 0:
        return []
    services = (yaml.safe_load(rendered.stdout) or {}).get("services") or {}
    built = {s.get("image") for s in services.values() if "build" in s}
    wanted = sorted({s["image"] for s in services.values() if s.get("image")} - built)
    missing = []
    for reference in wanted:
        registry, _ = docker.auth.resolve_repository_name(docker.utils.parse_repository_tag(reference)[0])
        if registry != docker.auth.INDEX_NAME:
            continue
        try:
            client.images.get(reference)
        except docker.errors.ImageNotFound:
            missing.append(reference)
    return missing


@pytest.fixture(scope="session")
def compose_stack_class() -> type[ComposeStack]:
    """The class ``compose_stack`` is made of; a suite overrides it with a subclass that adds its helpers."""
    return ComposeStack


@pytest.fixture(scope="session")
def compose_stack(
    compose_command: list[str],
    compose_files: list[str],
    compose_project: str,
    compose_env: dict[str, str],
    compose_token: str | None,
    compose_stack_class: type[ComposeStack],
    compose_image_hint: str,
) -> Iterator[ComposeStack]:
    """The stack built and started once per run, every container ready; ``down -v`` at the end.

    An image it runs without building that this engine lacks (``missing_images``) fails it before anything
    starts, naming each such image and ``compose_image_hint``.
    """
    import docker
    from pytest_docker.plugin import DockerComposeExecutor

    executor = DockerComposeExecutor(" ".join(compose_command), compose_files, compose_project)
    compose = [*compose_command, "-p", compose_project, *(a for f in compose_files for a in ("-f", f))]
    client = docker.from_env()
    with pytest.MonkeyPatch.context() as environment, closing(client):
        for name, value in compose_env.items():
            environment.setenv(name, value)  # what Compose reads, restored when the session ends
        missing = missing_images(compose, client)
        if missing:
            pytest.fail(f"this Docker engine lacks {', '.join(missing)}: {compose_image_hint}", pytrace=False)
        try:
            executor.execute("up --build -d")
            stack = compose_stack_class(client, compose_project, compose, token=compose_token)
            stack.wait_healthy()
            yield stack
        except BaseException as error:  # also when the stack never came up: nothing of this run is left behind
            _down(executor, error)
            raise
        _down(executor, None)


def _down(executor: Any, error: BaseException | None) -> None:
    """``down`` the stack with its volumes and the images it built; with ``error`` in flight, a failure of
    ``down`` becomes a note on it instead of hiding it."""
    try:
        executor.execute("down -v --remove-orphans --rmi local")
    except Exception as failure:
        if error is None:
            raise
        error.add_note(f"and then compose down failed: {failure}")


@pytest.fixture
def upstream_server() -> Iterator[Upstream]:
    """A real HTTP server on 127.0.0.1 that answers as the test scripts it (``shared_core.testing.Upstream``)."""
    with Upstream() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_resilience() -> None:
    """Every test starts with every upstream's circuit closed and its retry budget full (``reset_resilience``)."""
    reset_resilience()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, attach the last log lines of every container of the stack the test used."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    stack = next((value for value in funcargs.values() if isinstance(value, ComposeStack)), None)
    if report.failed and stack is not None:
        try:
            for container in stack.all_containers():
                tail = container.logs(tail=25).decode(errors="replace")
                report.sections.append((f"container {container.name} (last 25 lines)", tail))
        except Exception as exc:  # the engine is gone or the stack half removed: the test's own report stands
            report.sections.append(("container logs", f"not available: {type(exc).__name__}: {exc}"))
    return report
