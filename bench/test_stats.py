"""The benchmark's confidence interval of a median (bench/stats.py), which decides when its rounds stop."""

import math
import random

import pytest

from bench.stats import median_interval


def _coverage(n: int, k: int) -> float:
    """The exact coverage of the interval from the k-th smallest to the k-th largest of n values."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def test_thirty_rounds_give_the_tenth_to_the_twenty_first():
    """For 30 values the 95% interval runs from the 10th smallest to the 21st (the sign test's table)."""
    assert median_interval([float(i) for i in range(30, 0, -1)]) == (10.0, 21.0)


@pytest.mark.parametrize("n", range(6, 81))
def test_the_interval_covers_and_is_the_narrowest_that_does(n):
    """Every interval covers the median with at least 95% confidence, and one rank narrower would not."""
    low, high = median_interval(list(range(1, n + 1)))
    k = low
    assert high == n + 1 - k
    assert _coverage(n, k) >= 0.95
    assert _coverage(n, k + 1) < 0.95


def test_fewer_than_six_values_give_the_whole_range():
    """Too few values for 95% confidence: the interval is everything seen."""
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)


def test_a_skewed_distribution_is_covered_as_often_as_promised():
    """Over 4,000 draws of 25 values from a lognormal of median 1, the interval holds 1 about 95% of the time."""
    draw = random.Random(14)
    held = sum(
        low <= 1.0 <= high
        for low, high in (median_interval([draw.lognormvariate(0, 0.5) for _ in range(25)]) for _ in range(4000))
    )
    assert 0.94 <= held / 4000 <= 0.99
