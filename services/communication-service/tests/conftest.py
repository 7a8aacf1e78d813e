from collections.abc import Iterator

import pytest
from communication_service import api as service_api
from django.conf import settings
from django.test import Client

from shared_core.clients import set_testing
from shared_core.testing import Upstream


@pytest.fixture
def api(db) -> Client:
    """A test client that sends the service token on every call."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {settings.SERVICE_AUTH_TOKEN}")


@pytest.fixture
def user_service(settings) -> Iterator[Upstream]:
    """A real local HTTP server standing in for user-service."""
    set_testing(True)
    with Upstream() as users:
        settings.USER_SERVICE_URL = users.url
        service_api.users.cache_clear()
        yield users
    service_api.users.cache_clear()
    set_testing(False)
