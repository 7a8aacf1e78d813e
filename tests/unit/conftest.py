"""Fixtures of shared_core's unit tests."""

from collections.abc import Iterator

import pytest

from shared_core.testing import Upstream, set_testing


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A real, scriptable HTTP server on 127.0.0.1, with HTTPClient's backoff sleeps off."""
    set_testing(True)
    with Upstream() as server:
        yield server
    set_testing(False)
