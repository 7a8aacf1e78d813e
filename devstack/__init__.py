"""What this repository's tests, benchmarks and tools share about its stack.

The services (``services/SERVICES``, which the Makefile and ``tools/swarm`` read
too), a free port on 127.0.0.1, and made-up secrets for a stack that lives
for one run. Neither ``tests`` nor ``bench`` imports the other; both import this.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Final

__all__ = ["ROOT", "SERVICES", "free_port", "throwaway_secrets"]

#: The repository's root.
ROOT: Final = Path(__file__).resolve().parent.parent
#: The services of the stack, in the order the stack lists them.
SERVICES: Final = tuple((ROOT / "services" / "SERVICES").read_text().split())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throwaway_secrets() -> dict[str, str]:
    """The values tools/swarm turns into a stack's Swarm secrets, made up for one run that removes the stack after."""
    made_up = ("OPERATOR_TOKEN", "TICKET_SERVICE_TOKEN", "COMMUNICATION_SERVICE_TOKEN", "FILE_SERVICE_TOKEN")
    return {
        **{name: secrets.token_urlsafe(24) for name in made_up},
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24) + "@/:%?#",  # tools/swarm must encode it into the URLs
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    }
