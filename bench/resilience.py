"""Resilience cost: how long HTTPClient's defaults take to report a dead upstream, against their bounds."""

import socket
import time

from bench.stats import summary
from shared_core.clients import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_BACKOFF_JITTER,
    DEFAULT_DEADLINE,
    DEFAULT_RETRIES,
    HTTPClient,
    HTTPClientError,
)


def detect(url: str, repeats: int) -> list[float]:
    client = HTTPClient(url, token="bench")
    seconds = []
    for _ in range(repeats):
        started = time.monotonic()
        try:
            client.get("/x")
        except HTTPClientError:
            seconds.append(time.monotonic() - started)
        else:
            raise RuntimeError("a dead upstream answered")
    return seconds


def run() -> dict:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused_port = probe.getsockname()[1]
    refused = detect(f"http://127.0.0.1:{refused_port}", 5)
    # A paused upstream: the kernel completes the handshake into the backlog, nobody ever answers.
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(64)
        paused = detect(f"http://127.0.0.1:{stalled.getsockname()[1]}", 2)
    backoffs = sum(
        DEFAULT_BACKOFF_FACTOR * 2 ** (n - 1) + DEFAULT_BACKOFF_JITTER for n in range(2, DEFAULT_RETRIES + 1)
    )
    return {
        "connection_refused_s": summary(refused),
        "connection_refused_bound_s": backoffs,
        "paused_s": summary(paused),
        "paused_bound_s": DEFAULT_DEADLINE,
    }
