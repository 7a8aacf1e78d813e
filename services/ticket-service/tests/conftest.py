from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import Client

from shared_core.testing import Upstream, drain_outbox, set_testing


@pytest.fixture
def api(db) -> Client:
    """A test client that sends the service token on every call."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {settings.SERVICE_AUTH_TOKEN}")


@pytest.fixture
def neighbours(settings) -> Iterator[SimpleNamespace]:
    """Real local HTTP servers standing in for user-, communication- and file-service."""
    set_testing(True)
    with Upstream() as users, Upstream() as comms, Upstream() as files:
        settings.UPSTREAMS = {"user-service": users.url, "communication-service": comms.url, "file-service": files.url}
        yield SimpleNamespace(users=users, comms=comms, files=files)
    set_testing(False)


@pytest.fixture
def outbox(db, settings):
    """Runs the outbox's due tasks in the test's thread, as the worker container would; returns how many ran."""
    settings.OUTBOX_BACKOFF_BASE = 0.0  # a retry is due at once, so one drain runs every attempt

    return drain_outbox
