"""Image size, cold build and one-line rebuild, and start-up to healthy."""

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from bench.stats import summary
from devstack import ROOT, SERVICES

MB = 1_000_000


def sh(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT, **kwargs)


def size(client: docker.DockerClient, ref: str) -> int:
    return client.images.get(ref).attrs["Size"]


def sizes(client: docker.DockerClient, root: str, base: str, version: str) -> dict:
    """The base, what each service adds, and four services with and without the shared base."""
    added = {s: size(client, f"shared-core/{s}:{version}") - size(client, base) for s in SERVICES}
    standalone = {}
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        shutil.copy(ROOT / "base-image" / "requirements.lock", context)
        shutil.copytree(ROOT / "base-image" / "wheelhouse", context / "wheelhouse")
        shutil.copytree(ROOT / "shared_core", context / "shared_core", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(Path(__file__).with_name("standalone.Dockerfile"), context / "Dockerfile")
        for service in SERVICES:
            shutil.rmtree(context / "service", ignore_errors=True)
            shutil.copytree(
                ROOT / "services" / service, context / "service", ignore=shutil.ignore_patterns("tests", "__pycache__")
            )
            tag = f"shared-core-bench/standalone-{service}:latest"
            client.images.build(path=str(context), tag=tag, buildargs={"ROOT_IMAGE": root, "SERVICE": service}, rm=True)
            standalone[service] = size(client, tag) - size(client, root)
            client.images.remove(tag, force=True)
    base_size = size(client, base)
    shared_total = base_size + sum(added.values())
    standalone_total = size(client, root) + sum(standalone.values())
    return {
        "base_mb": base_size / MB,
        "service_added_mb": {s: v / MB for s, v in added.items()},
        "four_services_shared_mb": shared_total / MB,
        "four_services_standalone_mb": standalone_total / MB,
        "standalone_vs_shared": standalone_total / shared_total,
    }


def timed(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    out = sh(*args).stdout
    return time.monotonic() - started, out


def builds(version: str) -> dict:
    """Cold: root filesystem, base and four services with no cache. Then a one-line change in one view."""
    tag = f"shared-core-bench/root:{secrets.token_hex(4)}"
    base = f"shared-core-bench/base:{version}"
    client = docker.from_env()
    cold = {}
    cold["root_filesystem_s"], _ = timed("tools/build-rootfs", tag, "trixie")
    cold["base_s"], _ = timed(
        "docker",
        "build",
        "--no-cache",
        "-q",
        "-f",
        "Dockerfile.base",
        "--target",
        "base",
        "-t",
        base,
        "--build-arg",
        f"ROOT_IMAGE={tag}",
        ".",
    )
    service_s = 0.0
    for service in SERVICES:
        seconds, _ = timed(
            "docker",
            "build",
            "--no-cache",
            "-q",
            "-t",
            f"shared-core-bench/{service}",
            "--build-arg",
            f"BASE_IMAGE={base}",
            f"services/{service}",
        )
        service_s += seconds
    cold["four_services_s"] = service_s
    cold["total_s"] = sum(cold.values())
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "user-service"
        shutil.copytree(ROOT / "services" / "user-service", copy)
        views = copy / "user_service" / "api.py"
        views.write_text(views.read_text() + "\n# one-line change for the rebuild benchmark\n")
        started = time.monotonic()
        out = sh(
            "docker", "build", "-t", "shared-core-bench/user-service", "--build-arg", f"BASE_IMAGE={base}", str(copy)
        ).stdout
        rebuild_s = time.monotonic() - started
    # Classic builder output, one block per step; ARG and FROM make no layer of the service's own.
    blocks = [
        b for b in re.split(r"^Step \d+/\d+ : ", out, flags=re.MULTILINE)[1:] if not b.startswith(("ARG", "FROM"))
    ]
    steps = len(blocks)
    cached = sum("Using cache" in b for b in blocks)
    for ref in [f"shared-core-bench/{s}" for s in SERVICES] + [base, tag]:
        client.images.remove(ref, force=True)
    return {
        "cold": cold,
        "rebuild_one_line_s": rebuild_s,
        "rebuild_steps": steps,
        "rebuild_steps_run": steps - cached,
        "rebuild_vs_cold": rebuild_s / cold["total_s"],
    }


#: The per-caller tokens compose/compose.yaml requires.
STACK_TOKENS = ("OPERATOR_TOKEN", "TICKET_SERVICE_TOKEN", "COMMUNICATION_SERVICE_TOKEN", "FILE_SERVICE_TOKEN")


def startup(client: docker.DockerClient, base: str, version: str, compose: str) -> dict:
    """`up` from built images to all four healthy, and one container from start to healthy."""
    project = f"benchup{secrets.token_hex(3)}"
    env = {
        "BASE_IMAGE": base,
        "SHARED_CORE_VERSION": version,
        **{name: secrets.token_urlsafe(16) for name in STACK_TOKENS},
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "USER_PORT": "",
        "TICKET_PORT": "",
        "COMMUNICATION_PORT": "",
        "FILE_PORT": "",
    }
    full_env = {**os.environ, **env}
    stack = [*compose.split(), "--project-directory", "compose", "-p", project, "-f", "compose/compose.yaml"]
    try:
        started = time.monotonic()
        subprocess.run([*stack, "up", "-d"], check=True, capture_output=True, cwd=ROOT, env=full_env)
        subprocess.run(["tools/wait-healthy", project, "180"], check=True, capture_output=True, cwd=ROOT)
        stack_s = time.monotonic() - started
    finally:
        subprocess.run([*stack, "down", "-v"], check=False, capture_output=True, cwd=ROOT, env=full_env)
    one = []
    for _ in range(3):
        started = time.monotonic()
        container = client.containers.run(
            f"shared-core/user-service:{version}",
            detach=True,
            read_only=True,
            environment={
                "SERVICE_AUTH_TOKEN": "t",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "HEALTHCHECK_PATH": "/readyz",
            },
            tmpfs={"/tmp": "size=16m", "/data": "uid=10001,gid=10001,size=16m"},
            healthcheck={
                "test": ["CMD", "python3", "/usr/local/bin/healthcheck"],
                "interval": 250_000_000,
                "timeout": 3_000_000_000,
                "retries": 3,
            },
        )
        try:
            while True:
                container.reload()
                if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                    break
                if time.monotonic() - started > 120:
                    raise RuntimeError(container.logs().decode())
                time.sleep(0.05)
            one.append(time.monotonic() - started)
        finally:
            container.remove(force=True)
    return {
        "stack_up_to_all_healthy_s": stack_s,
        "one_container_to_healthy_s": summary(one),
        "probe_intervals": "stack: Compose's 2 s; one container: 0.25 s",
    }
