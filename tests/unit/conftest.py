"""Fixtures of shared_core's unit tests."""

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from shared_core.testing import Upstream, set_testing

# Property tests are bounded by examples, never by time (no per-example deadline on a busy CI machine), and
# leave no example database behind: each run draws afresh, and a failure prints its reproducing example.
settings.register_profile(
    "shared-core",
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("shared-core")


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A real, scriptable HTTP server on 127.0.0.1, with HTTPClient's backoff sleeps off."""
    set_testing(True)
    with Upstream() as server:
        yield server
    set_testing(False)
