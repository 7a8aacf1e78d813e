"""Request context and service token middleware, through Django's test client."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from shared_core._web.middleware import ServiceTokenMiddleware
from shared_core.testing import Reply

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


def test_exempt_paths_match_exactly_not_by_prefix(client):
    """/healthz is exempt, but /healthz/../api, /healthzz and /healthz/x need the token."""
    for path in ("/healthzz", "/healthz/x", "/healthz/../api/whoami/"):
        assert client.get(path).status_code == 401, path
    assert client.get("/healthz").status_code == 200


ROTATING = {
    "ticket-service": ["ticket-old-token-0123456789", "ticket-new-token-0123456789"],
    "operator": ["operator-token-0123456789"],
}


@pytest.fixture
def rotating(settings):
    settings.SERVICE_ACCEPTED_TOKENS = ROTATING
    return settings


@pytest.mark.parametrize(
    ("token", "caller"),
    [
        ("ticket-old-token-0123456789", "ticket-service"),
        ("ticket-new-token-0123456789", "ticket-service"),
        ("operator-token-0123456789", "operator"),
    ],
)
def test_every_accepted_token_names_its_caller(client, rotating, token, caller):
    """Each of a caller's tokens is accepted, the caller is known to the view and returned in X-Service-Caller."""
    response = client.get("/api/whoami/", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200 and response.json()["caller"] == caller
    assert response["X-Service-Caller"] == caller


def test_the_fleet_token_is_refused_once_callers_have_their_own(client, rotating):
    """With SERVICE_ACCEPTED_TOKENS set, SERVICE_AUTH_TOKEN alone is no longer accepted."""
    assert client.get("/api/whoami/", **AUTH).status_code == 401


def test_callers_restricts_a_view_to_named_callers(client, rotating):
    """@callers("ticket-service") admits ticket-service and gives another authenticated caller 403 JSON."""
    ok = client.get("/api/only-tickets/", headers={"Authorization": "Bearer ticket-new-token-0123456789"})
    assert ok.status_code == 200 and ok.json() == {"caller": "ticket-service"}
    refused = client.get("/api/only-tickets/", headers={"Authorization": "Bearer operator-token-0123456789"})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert "ticket-service" in refused.json()["detail"]


def test_callers_needs_a_name():
    """callers() with no names is a mistake, reported at import time."""
    from shared_core._web.middleware import callers

    with pytest.raises(ValueError, match="caller"):
        callers()


def test_accepted_tokens_naming_no_token_refuse_to_start(settings):
    """SERVICE_ACCEPTED_TOKENS whose entries are all empty is ImproperlyConfigured, not an open door."""
    settings.SERVICE_ACCEPTED_TOKENS = {"ticket-service": [""]}
    with pytest.raises(ImproperlyConfigured, match="no token"):
        ServiceTokenMiddleware(lambda request: HttpResponse())


def test_a_request_continues_the_callers_trace_or_starts_one(client):
    """A valid traceparent is continued (same trace, new span, in traceresponse); a malformed one starts a trace."""
    trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    continued = client.get("/healthz", HTTP_TRACEPARENT=f"00-{trace}-{parent}-01")
    version, trace_id, span_id, flags = continued["traceresponse"].split("-")
    assert (version, trace_id, flags) == ("00", trace, "01") and span_id != parent
    restarted = client.get("/healthz", HTTP_TRACEPARENT=f"00-{'0' * 32}-{parent}-01")
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", restarted["traceresponse"])
    assert trace not in restarted["traceresponse"] and "0" * 32 not in restarted["traceresponse"]


def test_with_tracing_off_no_trace_is_taken_or_sent(settings, client, upstream):
    """TRACING_ENABLED = False: no traceresponse, the view runs in no trace, and HTTPClient sends no traceparent."""
    settings.TRACING_ENABLED = False
    trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    settings.TEST_UPSTREAM_URL = upstream.url
    upstream.script("/x", Reply(200, b"{}"))
    response = client.get("/api/t/upstream/", HTTP_TRACEPARENT=f"00-{trace}-{parent}-01", **AUTH)
    assert response.status_code == 200 and "traceresponse" not in response and response["X-Request-ID"]
    assert "traceparent" not in {k.lower() for k in upstream.seen[0].headers}
