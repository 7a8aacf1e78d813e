"""Repeat, then report the median with min and max (machines are noisy), and how well the median is known."""

import statistics
import time
from collections.abc import Callable
from math import comb

#: The confidence of ``median_interval``.
DEFAULT_CONFIDENCE = 0.95


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def median_interval(values: list[float], confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """A distribution-free confidence interval of the median of ``values`` (the sign test's, from order statistics).

    The interval is the k-th smallest to the k-th largest value, k the largest with P(Binomial(n, 1/2) < k)
    at most (1 - confidence) / 2. It assumes nothing of the distribution but independent rounds. Below six
    values no such k exists at 95%: the interval is then the whole range.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    k = cumulative = 0
    while (cumulative := cumulative + comb(n, k) / 2**n) <= tail:
        k += 1
    k = max(k, 1)
    return ordered[k - 1], ordered[n - k]


def rate(call: Callable[[], object], count: int, repeats: int) -> list[float]:
    """Calls per second of ``call``, one figure per repeat."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            call()
        rates.append(count / (time.perf_counter() - started))
    return rates
