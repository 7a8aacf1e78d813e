"""Every shipped image is Debian stable with security support (trixie), never testing or unstable: its release
files say so, its apt sources (where it kept any) name only trixie's suites, and every package it holds has the
version its root's lock recorded from trixie."""

from __future__ import annotations

import os
import re
from pathlib import Path

import docker
import pytest

from devstack import ROOT

pytestmark = pytest.mark.docker

#: The supported release: Debian 13, with security support until 2028.
RELEASE = "trixie"
SUPPORTED_SUITES = {RELEASE, f"{RELEASE}-updates", f"{RELEASE}-security", f"{RELEASE}-backports"}
#: /etc/debian_version of a trixie point release; testing and unstable write "<name>/sid".
STABLE_VERSION = re.compile(r"13\.\d+\n")
#: Each shipped image, by the variable `make test-image` names it with, and the lock of the root it is built on.
IMAGES = {
    "SHARED_CORE_BASE_IMAGE": ROOT / "tools" / "debian-trixie.lock",
    "SHARED_CORE_PROXY_IMAGE": ROOT / "tools" / "debian-trixie-edge.lock",
    "SHARED_CORE_POSTGRES_IMAGE": None,
}
REPORT = (
    "cat /etc/debian_version; echo '#'; cat /etc/os-release; echo '#';"
    " cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; echo '#';"
    " dpkg-query -W -f '${Package} ${Version}\\n'"
)


def suites(sources: str) -> set[str]:
    """The suites apt ``sources`` (one-line ``deb`` entries and deb822 ``Suites:`` fields) name."""
    named = set()
    for line in sources.splitlines():
        if match := re.match(r"\s*deb(?:-src)?\s+(?:\[[^]]*\]\s+)?\S+\s+(\S+)", line):
            named.add(match[1])
        elif match := re.match(r"\s*Suites:\s*(.+)", line):
            named.update(match[1].split())
    return named


def locked(lock: Path) -> dict[str, str]:
    """Package to version, from a lock tools/build-rootfs wrote."""
    return dict(line.split() for line in lock.read_text().splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("variable", sorted(IMAGES))
def test_each_shipped_image_holds_only_packages_of_debian_stable(docker_client: docker.DockerClient, variable):
    """The image's Debian is trixie (13.x, not testing's "<name>/sid"), apt names no other suite, and each of its
    packages has the version its root's lock holds."""
    image = os.environ.get(variable)
    if not image:
        pytest.fail(f"{variable} is not set: run the image tests with `make test-image`")
    output = docker_client.containers.run(image, ["sh", "-c", REPORT], entrypoint=[], remove=True).decode()
    debian_version, os_release, sources, packages = output.split("#\n")
    assert STABLE_VERSION.fullmatch(debian_version), f"{image}: /etc/debian_version is {debian_version!r}"
    assert f"VERSION_CODENAME={RELEASE}\n" in os_release, f"{image}: {os_release}"
    assert suites(sources) <= SUPPORTED_SUITES, f"{image}: apt sources name {suites(sources) - SUPPORTED_SUITES}"
    if (lock := IMAGES[variable]) is not None:
        versions = locked(lock)
        held = dict(line.split(" ", 1) for line in packages.splitlines())
        differ = {name: (held[name], versions.get(name)) for name in held if versions.get(name) != held[name]}
        assert not differ, f"{image}: packages not as {lock.name} locks them (held, locked): {differ}"


def test_the_check_tells_a_testing_suite_from_stable():
    """The suites a testing root's sources name, and its release file, are what the image test refuses."""
    assert suites("deb http://deb.debian.org/debian forky main\n") == {"forky"}
    assert suites("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\n") == {
        "trixie",
        "trixie-updates",
    }
    assert not STABLE_VERSION.fullmatch("forky/sid\n") and STABLE_VERSION.fullmatch("13.8\n")
