"""Fixtures for the base image's contract tests: a Docker client, the base image and a child image."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
from docker.models.containers import Container
from docker.models.images import Image

CHILD_CONTEXT = Path(__file__).parent / "child"
#: Generous bound on waiting for a container to turn healthy on a busy 2-core machine.
HEALTHY_WITHIN = 60.0


@pytest.fixture(scope="session")
def base_image_ref() -> str:
    """The base image under test, as `make print-base-image` names it."""
    ref = os.environ.get("SHARED_CORE_BASE_IMAGE")
    if not ref:
        pytest.fail("SHARED_CORE_BASE_IMAGE is not set: run the image tests with `make test-image`")
    return ref


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient, base_image_ref: str) -> Image:
    return docker_client.images.get(base_image_ref)


@pytest.fixture(scope="session")
def child_image(docker_client: docker.DockerClient, base_image_ref: str) -> Iterator[Image]:
    """A throwaway service image built FROM the base, removed after the session."""
    tag = f"shared-core-contract-child:{uuid.uuid4().hex[:12]}"
    image, _ = docker_client.images.build(
        path=str(CHILD_CONTEXT), tag=tag, buildargs={"BASE_IMAGE": base_image_ref}, rm=True, forcerm=True
    )
    yield image
    docker_client.images.remove(tag, force=True)


class Running:
    """A started container with its published port on 127.0.0.1."""

    def __init__(self, container: Container) -> None:
        self.container = container
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp") or [{"HostPort": "0"}]
        self.url = f"http://127.0.0.1:{bindings[0]['HostPort']}"

    def wait_healthy(self) -> None:
        give_up = time.monotonic() + HEALTHY_WITHIN
        while time.monotonic() < give_up:
            self.container.reload()
            state = self.container.attrs["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                return
            if state["Status"] == "exited":
                break
            time.sleep(0.2)
        raise AssertionError(f"not healthy: {self.container.attrs['State']}\n{self.logs()}")

    def wait_for_log(self, text: str) -> None:
        """Wait until the container's log holds ``text`` (at most HEALTHY_WITHIN seconds)."""
        give_up = time.monotonic() + HEALTHY_WITHIN
        while text not in self.logs():
            if time.monotonic() > give_up:
                raise AssertionError(f"{text!r} never logged:\n{self.logs()}")
            time.sleep(0.05)

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")


@pytest.fixture
def run_child(docker_client: docker.DockerClient, child_image: Image) -> Iterator[object]:
    """Start child containers (read-only root and tmpfs /tmp by default); all removed afterwards."""
    started: list[Container] = []

    def run(*, wait: bool = True, **kwargs: object) -> Running:
        options: dict[str, object] = {
            "detach": True,
            "ports": {"8000/tcp": ("127.0.0.1", None)},
            "read_only": True,
            "tmpfs": {"/tmp": "rw,size=16m"},
        }
        options.update(kwargs)
        container = docker_client.containers.run(child_image.id, **options)
        started.append(container)
        running = Running(container)
        if wait:
            running.wait_healthy()
        return running

    yield run
    for container in started:
        container.remove(force=True)
