"""The builder variant `<version>-dev`: a child adds a wheel offline in a -dev stage and copies it into a stage
FROM the base, the README's recipe; the child imports it, has no pip, and stays within the size bars."""

from __future__ import annotations

import base64
import hashlib
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.images import Image

MAX_BASE_BYTES = 120 * 1000 * 1000
MAX_ADDED_BYTES = 1000 * 1000
RECIPE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}-dev AS deps
COPY wheels/ /tmp/wheels/
RUN pip install --no-index --find-links /tmp/wheels --no-compile --target /opt/extra contract-extra

FROM ${BASE_IMAGE}
COPY --from=deps /opt/extra/ /opt/extra/
ENV PYTHONPATH=/opt/shared:/opt/extra
"""


def make_wheel(directory: Path) -> Path:
    """A pure-Python wheel, written by hand: a module and the three dist-info files pip reads."""
    files = {
        "contract_extra.py": b'VALUE = "installed offline from a local wheelhouse"\n',
        "contract_extra-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: contract-extra\nVersion: 1.0\n",
        "contract_extra-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files["contract_extra-1.0.dist-info/RECORD"] = (
        "\n".join([*record, "contract_extra-1.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheel = directory / "contract_extra-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def dev_image(docker_client: docker.DockerClient, base_image_ref: str) -> Image:
    return docker_client.images.get(f"{base_image_ref}-dev")


@pytest.fixture(scope="module")
def extended(docker_client: docker.DockerClient, base_image_ref: str, tmp_path_factory) -> Iterator[Image]:
    """The README's recipe, built with no network at all."""
    context = tmp_path_factory.mktemp("extended")
    (context / "wheels").mkdir()
    make_wheel(context / "wheels")
    (context / "Dockerfile").write_text(RECIPE)
    tag = f"shared-core-contract-extended:{uuid.uuid4().hex[:12]}"
    image, _ = docker_client.images.build(
        path=str(context), tag=tag, buildargs={"BASE_IMAGE": base_image_ref}, network_mode="none", rm=True, forcerm=True
    )
    yield image
    docker_client.images.remove(tag, force=True)


def run(docker_client: docker.DockerClient, image: str, *command: str) -> tuple[int, str]:
    container = docker_client.containers.run(image, list(command), entrypoint=[], detach=True)
    try:
        status = container.wait(timeout=60)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_dev_image_is_the_base_plus_pip(docker_client, base_image, dev_image):
    """-dev has pip, which shows shared-core at the base's version label, and shared_core; the base has no pip."""
    version = base_image.labels["org.opencontainers.image.version"]
    status, shown = run(docker_client, dev_image.id, "pip", "show", "shared-core")
    assert status == 0 and f"Version: {version}" in shown, shown
    status, out = run(docker_client, dev_image.id, "pip", "--version")
    assert status == 0 and "pip " in out
    status, out = run(
        docker_client, dev_image.id, "python3", "-c", "import shared_core; print(shared_core.__version__)"
    )
    assert status == 0 and out.strip() == base_image.labels["org.opencontainers.image.version"]
    assert run(docker_client, base_image.id, "python3", "-m", "pip", "--version")[0] != 0


def test_a_child_adds_a_wheel_offline_and_keeps_no_pip(docker_client, base_image, extended):
    """The recipe's child imports the wheel, has no pip, and stays within the base's and a service's size bars."""
    status, out = run(docker_client, extended.id, "python3", "-c", "import contract_extra; print(contract_extra.VALUE)")
    assert status == 0 and out.strip() == "installed offline from a local wheelhouse"
    assert run(docker_client, extended.id, "python3", "-m", "pip", "--version")[0] != 0
    assert base_image.attrs["Size"] <= MAX_BASE_BYTES
    assert extended.attrs["Size"] - base_image.attrs["Size"] <= MAX_ADDED_BYTES
