from collections.abc import Iterator

import pytest
from django.test import Client

from shared_core.testing import Upstream, set_testing

OPERATOR_TOKEN = "file-tests-operator-token-0123456789"
TICKET_SERVICE_TOKEN = "file-tests-ticket-service-token-0123456789"


@pytest.fixture
def ticket_service(settings) -> Iterator[Upstream]:
    """A real local HTTP server standing in for ticket-service; every ticket is live unless scripted."""
    set_testing(True)
    with Upstream() as tickets:
        settings.UPSTREAMS = {"ticket-service": tickets.url}
        yield tickets
    set_testing(False)


@pytest.fixture
def api(db, settings, tmp_path, ticket_service) -> Client:
    """A test client calling as the operator, storing blobs in a fresh directory."""
    settings.FILE_STORAGE_DIR = tmp_path / "blobs"
    settings.SERVICE_ACCEPTED_TOKENS = {"operator": [OPERATOR_TOKEN], "ticket-service": [TICKET_SERVICE_TOKEN]}
    return Client(HTTP_AUTHORIZATION=f"Bearer {OPERATOR_TOKEN}")


@pytest.fixture
def tickets(api) -> Client:
    """A test client calling as ticket-service, the only caller of the ticket-wide endpoints."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {TICKET_SERVICE_TOKEN}")
