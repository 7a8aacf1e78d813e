"""`make pin`'s result is what the stack builds FROM: neither Compose nor make passes another base unless asked."""

from __future__ import annotations

import subprocess

from devstack import ROOT

PINNED = "registry.example:5000/shared-core/base:9.9.9@sha256:" + "ab" * 32


def service_base(tmp_path, *args: str) -> str:
    """`make print-service-base` in a tree whose first service's Dockerfile is pinned to PINNED."""
    service = tmp_path / "services" / "user-service"
    service.mkdir(parents=True)
    (tmp_path / "services" / "SERVICES").write_text("user-service\n")
    (service / "Dockerfile").write_text(f"ARG BASE_IMAGE={PINNED}\nFROM ${{BASE_IMAGE}}\n")
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "print-service-base", *args],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_stack_builds_from_the_pinned_base(tmp_path):
    """With no SERVICE_BASE given, the stack's BASE_IMAGE is the Dockerfile's pinned reference."""
    assert service_base(tmp_path) == PINNED


def test_a_base_given_on_the_command_line_wins(tmp_path):
    """SERVICE_BASE=<ref> is the one way to build the services from another base."""
    assert service_base(tmp_path, "SERVICE_BASE=shared-core/base:test") == "shared-core/base:test"


def test_compose_and_make_pass_no_other_base():
    """compose.yaml takes BASE_IMAGE only from what make passes, and `make images` adds a build arg only on request."""
    makefile = "".join(path.read_text() for path in [ROOT / "Makefile", *sorted((ROOT / "make").glob("*.mk"))])
    assert "STACK = BASE_IMAGE=$(or $(SERVICE_BASE),$(PINNED_BASE))" in makefile
    assert "--build-arg BASE_IMAGE=$(BASE_IMAGE)" not in makefile
