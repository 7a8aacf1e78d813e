import pytest
from django.conf import settings
from django.test import Client


@pytest.fixture
def api(db) -> Client:
    """A test client that sends the service token on every call."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {settings.SERVICE_AUTH_TOKEN}")
