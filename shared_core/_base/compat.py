"""Which shared_core versions a service supports, checked when its container starts.

``python -m shared_core._base.compat ">=0.1,<0.2"`` exits 0 when the installed shared_core
satisfies the requirement (a PEP 440 version specifier, read by ``packaging``),
else prints one line naming both versions and exits 1. Pre-releases such as
``0.2.0rc1`` are versions like any other: ``>=0.2.0rc1`` admits them. The base
image's entrypoint runs it with ``SHARED_CORE_REQUIRES``.
"""

from __future__ import annotations

import sys

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from shared_core import __version__

__all__ = ["IncompatibleVersion", "require", "satisfies"]


class IncompatibleVersion(RuntimeError):
    """The installed shared_core does not satisfy a service's requirement."""


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` meets ``spec`` (pre-releases included); ``ValueError`` names a malformed one."""
    if not spec.strip():
        raise ValueError(f"empty version requirement {spec!r}; use e.g. '>=0.1,<0.2'")
    try:
        specifiers = SpecifierSet(spec)
    except InvalidSpecifier:
        raise ValueError(f"malformed version requirement {spec!r}; use e.g. '>=0.1,<0.2'") from None
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise ValueError(f"malformed version {version!r}") from None
    return specifiers.contains(parsed, prereleases=True)


def require(spec: str, version: str = __version__) -> None:
    """Raise ``IncompatibleVersion`` (one line, both versions) unless ``version`` satisfies ``spec``."""
    if not satisfies(version, spec):
        raise IncompatibleVersion(
            f"shared_core {version} in this base image does not satisfy the service's requirement {spec}"
        )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared_core._base.compat SPEC", file=sys.stderr)
        return 2
    try:
        require(argv[0])
    except (IncompatibleVersion, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
