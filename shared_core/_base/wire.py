"""What a service and its callers agree on over HTTP, stated once: header names and the bounds of their values.

The lowest layer: it imports nothing, so the data layer, the client and the web layer all read it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CALLER_NAME_PATTERN", "IDEMPOTENCY_KEY_HEADER", "MAX_CALLER_NAME", "MAX_IDEMPOTENCY_KEY"]

#: A POST or PATCH carrying this header is retried too; the server must deduplicate on it.
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
#: The longest ``Idempotency-Key`` accepted.
MAX_IDEMPOTENCY_KEY: Final = 128
#: The longest caller name ``SERVICE_ACCEPTED_TOKENS`` may declare, and what ``IdempotentModel`` stores.
MAX_CALLER_NAME: Final = 64
#: A caller name: a lower-case letter or digit, then up to ``MAX_CALLER_NAME - 1`` of those or ``. _ -``.
CALLER_NAME_PATTERN: Final = rf"[a-z0-9][a-z0-9._-]{{0,{MAX_CALLER_NAME - 1}}}"
