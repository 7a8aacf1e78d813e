from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

from shared_core.testing import Upstream, set_testing


@pytest.fixture
def api(db) -> Client:
    """A test client that sends the service token on every call."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {settings.SERVICE_AUTH_TOKEN}")


@pytest.fixture
def user_service(settings) -> Iterator[Upstream]:
    """A real local HTTP server standing in for user-service."""
    set_testing(True)
    with Upstream() as users:
        settings.UPSTREAMS = {"user-service": users.url}
        yield users
    set_testing(False)
