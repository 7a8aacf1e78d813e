"""Fixtures shared by the Docker suites (tests/image, tests/integration)."""

import os

import docker
import pytest


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """The local engine; skipped with one line outside CI when there is none, a failure in CI."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(f"no Docker engine ({exc.__class__.__name__}): Docker tests skipped")
    return client
