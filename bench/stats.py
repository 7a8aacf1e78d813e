"""Repeat, then report the median with min and max: machines are noisy."""

import statistics
import time
from collections.abc import Callable


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rate(call: Callable[[], object], count: int, repeats: int) -> list[float]:
    """Calls per second of ``call``, one figure per repeat."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            call()
        rates.append(count / (time.perf_counter() - started))
    return rates
