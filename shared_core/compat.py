"""Which shared_core versions a service supports, checked when its container starts.

``python -m shared_core.compat ">=0.1,<0.2"`` exits 0 when the installed shared_core
satisfies every comma-separated clause (operators ``==``, ``!=``, ``>=``, ``<=``, ``>``,
``<`` over dotted numbers), else prints one line naming both versions and exits 1.
The base image's entrypoint runs it with ``SHARED_CORE_REQUIRES``.
"""

from __future__ import annotations

import operator
import re
import sys
from collections.abc import Callable

from shared_core import __version__

__all__ = ["IncompatibleVersion", "require", "satisfies"]

_CLAUSE = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(\d+(?:\.\d+)*)\s*")
_OPERATORS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


class IncompatibleVersion(RuntimeError):
    """The installed shared_core does not satisfy a service's requirement."""


def _parse(version: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (3 - len(parts))


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` meets every clause of ``spec``; ``ValueError`` names a malformed clause."""
    clauses = [c for c in spec.split(",") if c.strip()]
    if not clauses:
        raise ValueError(f"empty version requirement {spec!r}")
    for clause in clauses:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise ValueError(f"malformed version clause {clause.strip()!r} in {spec!r}; use e.g. '>=0.1,<0.2'")
        if not _OPERATORS[match[1]](_parse(version), _parse(match[2])):
            return False
    return True


def require(spec: str, version: str = __version__) -> None:
    """Raise ``IncompatibleVersion`` (one line, both versions) unless ``version`` satisfies ``spec``."""
    if not satisfies(version, spec):
        raise IncompatibleVersion(
            f"shared_core {version} in this base image does not satisfy the service's requirement {spec}"
        )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared_core.compat SPEC", file=sys.stderr)
        return 2
    try:
        require(argv[0])
    except (IncompatibleVersion, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
