"""`make publish` and `make pin` against a real registry on 127.0.0.1 (tools/with-registry starts it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import docker
import pytest
import requests

from tests.image.conftest import CHILD_CONTEXT

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


@pytest.fixture
def registry() -> str:
    value = os.environ.get("REGISTRY")
    if not value:
        pytest.fail("REGISTRY is not set: run these tests through `make test-image` (tools/with-registry)")
    return value


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_publish_then_pin_gives_a_digest_that_builds(docker_client, base_image_ref, registry, tmp_path):
    """The pinned FROM names the digest the registry serves, and a build pulls the base by that digest."""
    make("publish", f"REGISTRY={registry}")
    pinned_ref = (ROOT / "build" / "base-image.digest").read_text().strip()
    repo, tag = base_image_ref.rsplit(":", 1)
    served = requests.head(
        f"http://{registry}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}, timeout=10
    ).headers["Docker-Content-Digest"]
    assert pinned_ref == f"{registry}/{base_image_ref}@{served}"

    context = tmp_path / "service"
    shutil.copytree(CHILD_CONTEXT, context)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG BASE_IMAGE\n", "ARG BASE_IMAGE=unpinned\n"))
    make("pin", f"PIN_FILES={dockerfile}")
    assert re.search(rf"^ARG BASE_IMAGE={re.escape(pinned_ref)}$", dockerfile.read_text(), flags=re.MULTILINE)

    # Forget every local name of the pushed image, so the build must pull it from the registry by digest
    # (and the builder variant's, which publish pushed beside it).
    docker_client.images.remove(f"{registry}/{base_image_ref}")
    docker_client.images.remove(f"{registry}/{base_image_ref}-dev")
    digest_name = f"{registry}/{repo}@{served}"
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(digest_name)
    tag_name = f"shared-core-pinned-child:{served[7:19]}"
    try:
        image, _ = docker_client.images.build(path=str(context), tag=tag_name, rm=True, forcerm=True, pull=False)
        assert digest_name in docker_client.images.get(digest_name).attrs["RepoDigests"]
        assert image.attrs["Config"]["Env"]
    finally:
        docker_client.images.remove(tag_name, force=True)
        docker_client.images.remove(digest_name, force=True)


def test_pin_refuses_a_dockerfile_without_the_arg(tmp_path):
    """make pin names a Dockerfile that has no ARG BASE_IMAGE line instead of silently skipping it."""
    digest_file = tmp_path / "digest"
    digest_file.write_text("127.0.0.1:1/shared-core/base:0@sha256:" + "0" * 64 + "\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    done = subprocess.run(
        ["make", "--no-print-directory", "pin", f"PIN_FILES={dockerfile}", f"BASE_DIGEST_FILE={digest_file}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "has no 'ARG BASE_IMAGE=' line" in done.stderr
