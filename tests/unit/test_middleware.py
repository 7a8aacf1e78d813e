"""Request context and service token middleware, through Django's test client."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from shared_core.middleware import ServiceTokenMiddleware

AUTH = {"HTTP_AUTHORIZATION": "Bearer unit-test-service-token"}


def test_incoming_request_id_is_used_and_returned(client):
    """A safe X-Request-ID is exposed to the view and echoed on the response."""
    response = client.get("/api/whoami/", HTTP_X_REQUEST_ID="abc-123", **AUTH)
    assert response.json()["request_id"] == "abc-123" and response["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("given", [None, "", "bad id\nwith newline", "x" * 200])
def test_missing_or_unsafe_request_id_is_replaced(client, given):
    """A missing, empty, multi-line or overlong id is replaced by a fresh 32-hex id."""
    extra = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    response = client.get("/api/whoami/", **extra, **AUTH)
    rid = response.json()["request_id"]
    assert rid != given and len(rid) == 32 and response["X-Request-ID"] == rid


def test_incoming_deadline_is_exposed_to_the_view(client):
    """X-Request-Deadline: 2.5 gives the view a deadline with at most 2.5 s left."""
    remaining = client.get("/api/whoami/", HTTP_X_REQUEST_DEADLINE="2.5", **AUTH).json()["remaining"]
    assert 0 < remaining <= 2.5
    assert client.get("/api/whoami/", HTTP_X_REQUEST_DEADLINE="soon", **AUTH).json()["remaining"] is None


def test_spent_deadline_gets_504_json_without_running_the_view(client):
    """A request arriving with no budget left gets 504 with a JSON error."""
    response = client.get("/api/whoami/", HTTP_X_REQUEST_DEADLINE="0", HTTP_X_REQUEST_ID="r-1", **AUTH)
    assert response.status_code == 504
    assert response.json() == {
        "error": "deadline_exceeded",
        "detail": "the caller's deadline had passed",
        "request_id": "r-1",
    }


@pytest.mark.parametrize("header", [None, "Bearer wrong", "unit-test-service-token", "Bearer unit-test-service-token "])
def test_missing_or_wrong_token_gets_401_json(client, header):
    """Without the exact bearer token an API call gets 401 with a JSON body that does not echo the token."""
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/api/whoami/", **extra)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"unit-test-service-token" not in response.content


def test_right_token_passes_and_exempt_paths_need_none(client):
    """The right token reaches the view; /healthz needs no token."""
    assert client.get("/api/whoami/", **AUTH).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_token_middleware_refuses_to_start_without_a_token(settings):
    """Without SERVICE_AUTH_TOKEN the middleware raises ImproperlyConfigured at start."""
    settings.SERVICE_AUTH_TOKEN = ""
    with pytest.raises(ImproperlyConfigured, match="SERVICE_AUTH_TOKEN"):
        ServiceTokenMiddleware(lambda request: HttpResponse())
