import pytest
from django.conf import settings as django_settings
from django.test import Client


@pytest.fixture
def api(db, settings, tmp_path) -> Client:
    """A test client with the service token, storing blobs in a fresh directory."""
    settings.FILE_STORAGE_DIR = tmp_path / "blobs"
    return Client(HTTP_AUTHORIZATION=f"Bearer {django_settings.SERVICE_AUTH_TOKEN}")
