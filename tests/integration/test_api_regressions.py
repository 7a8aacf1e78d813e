"""Issue 11's table, across containers: each input that once reached a 500 or an HTML page, through the edge."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from devstack import SERVICES
from tests.integration.conftest import API_PATHS
from tests.rawhttp import exchange

SURROGATE = b'"\\ud800"'


def new_user(stack) -> str:
    response = stack.call(
        "POST", "user-service", "/api/users/", json={"email": f"{uuid.uuid4().hex}@x.io", "name": "U"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_ticket(stack, **headers: str) -> str:
    body = {"title": "t", "requester_id": new_user(stack)}
    response = stack.call("POST", "ticket-service", "/api/tickets/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_names(response: requests.Response, status: int, field: str | None = None, error: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert (
        body["request_id"] and (field is None or body["field"] == field) and (error is None or body["error"] == error)
    )


@pytest.mark.parametrize("service", SERVICES)
def test_a_superscript_limit_is_400_naming_limit(stack, service):
    """?limit=%C2%B2 (a superscript two, which str.isdigit accepts) is a 400 naming limit on every list."""
    assert_names(stack.call("GET", service, API_PATHS[service] + "?limit=%C2%B2"), 400, field="limit")


@pytest.mark.parametrize(
    ("service", "method", "path", "template"),
    [
        ("user-service", "POST", "/api/users/", b'{"email": "s@x.io", "name": %s}'),
        ("user-service", "POST", "/api/departments/", b'{"name": %s}'),
        (
            "ticket-service",
            "POST",
            "/api/tickets/",
            b'{"title": %s, "requester_id": "' + str(uuid.uuid4()).encode() + b'"}',
        ),
        (
            "ticket-service",
            "POST",
            "/api/tickets/",
            b'{"title": "t", "description": %s, "requester_id": "' + str(uuid.uuid4()).encode() + b'"}',
        ),
        (
            "communication-service",
            "POST",
            "/api/notifications/",
            b'{"ticket_id": "'
            + str(uuid.uuid4()).encode()
            + b'", "recipient_id": "'
            + str(uuid.uuid4()).encode()
            + b'", "message": %s}',
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(stack, service, method, path, template):
    """A JSON string holding a lone surrogate is refused with a 400 naming its field, not a UnicodeEncodeError."""
    field = template.split(b": %s")[0].rsplit(b'"', 2)[1].decode()
    response = stack.call(
        method, service, path, data=template % SURROGATE, headers={"Content-Type": "application/json"}
    )
    assert_names(response, 400, field=field)


def test_a_lone_surrogate_in_a_patch_is_a_400(stack):
    """PATCH with a lone surrogate in name is a 400 naming name, and the user is unchanged."""
    user_id = new_user(stack)
    response = stack.call(
        "PATCH",
        "user-service",
        f"/api/users/{user_id}/",
        data=b'{"name": %s}' % SURROGATE,
        headers={"Content-Type": "application/json"},
    )
    assert_names(response, 400, field="name")
    assert stack.call("GET", "user-service", f"/api/users/{user_id}/").json()["name"] == "U"


@pytest.mark.parametrize(("service", "path"), [("user-service", "/api/users/"), ("ticket-service", "/api/tickets/")])
def test_json_nested_ten_thousand_deep_is_invalid_json(stack, service, path):
    """A body nested 10,000 deep is a 400 invalid_json, not a RecursionError 500."""
    deep = b"[" * 10_000 + b"]" * 10_000
    response = stack.call("POST", service, path, data=deep, headers={"Content-Type": "application/json"})
    assert_names(response, 400, error="invalid_json")


def test_a_deletion_number_past_the_column_is_400(stack, tokens):
    """file-service's restore refuses a deletion number its integer column cannot hold with a 400 naming it."""
    response = stack.call(
        "POST",
        "file-service",
        f"/api/tickets/{uuid.uuid4()}/files/restore/",
        json={"deletion": 2**31},
        headers={"Authorization": f"Bearer {tokens['TICKET_SERVICE_TOKEN']}"},
    )
    assert_names(response, 400, field="deletion")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_checks_answer_other_methods_with_json_405(stack, path, method):
    """A write method on a health check is a JSON 405 with Allow, not Django's CSRF HTML page."""
    response = requests.request(method, stack.url("user-service") + path, timeout=30)
    assert_names(response, 405, error="method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD"


def test_ticket_replay_answers_the_first_result_after_its_requester_is_deleted(stack):
    """Resending a ticket POST with its Idempotency-Key after the requester's deletion replays the ticket."""
    key, user_id = f"k-{uuid.uuid4()}", new_user(stack)
    body = {"title": "t", "requester_id": user_id}
    first = stack.call("POST", "ticket-service", "/api/tickets/", json=body, headers={"Idempotency-Key": key})
    assert stack.call("DELETE", "user-service", f"/api/users/{user_id}/").status_code == 204
    again = stack.call("POST", "ticket-service", "/api/tickets/", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = stack.call(
        "POST", "ticket-service", "/api/tickets/", json={**body, "title": "u"}, headers={"Idempotency-Key": key}
    )
    assert_names(other, 422, error="idempotency_key_reused")


def test_an_upload_for_an_unknown_or_deleted_ticket_is_refused(stack):
    """An upload for an unknown or deleted ticket (file-service asks ticket-service) is a 404; nothing is stored."""
    deleted = new_ticket(stack)
    assert stack.call("DELETE", "ticket-service", f"/api/tickets/{deleted}/").status_code == 204
    for ticket_id in (str(uuid.uuid4()), deleted):
        response = stack.call(
            "POST", "file-service", "/api/files/", data={"ticket_id": ticket_id}, files={"file": ("a", b"x")}
        )
        assert_names(response, 404, field="ticket_id")
        listed = stack.call("GET", "file-service", f"/api/files/?ticket_id={ticket_id}&include_deleted=true")
        assert listed.json()["results"] == []


def post_chunked(stack, service: str, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` through the edge in two chunks (Transfer-Encoding: chunked); the status and answer."""
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])) + b"0\r\n\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {stack.token}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, _, answer = exchange("127.0.0.1", int(stack.url(service).rsplit(":", 1)[1]), head.encode() + chunks)
    return status, answer


def test_chunked_json_and_multipart_bodies_are_processed(stack):
    """A body sent with Transfer-Encoding: chunked is read, at the edge and service to service, not seen empty."""
    user_id = new_user(stack)
    body = json.dumps({"title": "chunked", "requester_id": user_id}).encode()
    status, answer = post_chunked(stack, "ticket-service", "/api/tickets/", "application/json", body)
    assert status == 201, answer[:300]
    # Service to service: from inside file-service's container straight to ticket-service, no proxy between.
    direct = json.dumps({"title": "direct", "requester_id": user_id}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"}
    code = (
        "import http.client, json; c = http.client.HTTPConnection('ticket-service', 8000, timeout=30); "
        f"c.request('POST', '/api/tickets/', body=iter([{direct[:9]!r}, {direct[9:]!r}]), headers={headers!r}, "
        "encode_chunked=True); r = c.getresponse(); print(r.status, json.loads(r.read())['title'])"
    )
    assert stack.manage("file-service", code).splitlines()[-1] == "201 direct"
    boundary, ticket_id = "b0undary", new_ticket(stack)
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="ticket_id"\r\n\r\n{ticket_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nchunked bytes\r\n--{boundary}--\r\n"
    ).encode()
    status, answer = post_chunked(
        stack, "file-service", "/api/files/", f"multipart/form-data; boundary={boundary}", multipart
    )
    assert status == 201, answer[:300]


def test_no_content_has_no_type_and_head_is_get_without_a_body(stack):
    """A 204 carries no Content-Type; HEAD on a GET path is answered like GET with no body."""
    deleted = stack.call("DELETE", "ticket-service", f"/api/tickets/{new_ticket(stack)}/")
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers and deleted.content == b""
    head = requests.head(stack.url("user-service") + "/api/users/?limit=1", headers=stack.auth, timeout=30)
    get = stack.call("GET", "user-service", "/api/users/?limit=1")
    assert (
        head.status_code == 200 and head.content == b"" and head.headers["Content-Type"].startswith("application/json")
    )
    assert int(head.headers.get("Content-Length", len(get.content))) == len(get.content)


def test_deleting_a_deleted_notification_is_404_whatever_the_query(stack, tokens):
    """DELETE of a deleted notification is 404 with or without ?include_deleted=1, as in every service."""
    user_id = new_user(stack)
    body = {"ticket_id": str(uuid.uuid4()), "recipient_id": user_id, "message": "m"}
    notification = stack.call("POST", "communication-service", "/api/notifications/", json=body).json()["id"]
    path = f"/api/notifications/{notification}/"
    assert stack.call("DELETE", "communication-service", path).status_code == 204
    for query in ("", "?include_deleted=1"):
        assert_names(stack.call("DELETE", "communication-service", path + query), 404, error="not_found")


def test_every_page_of_a_list_is_reachable(stack):
    """Following next cursors walks a list past its first page, each row once."""
    user_id = new_user(stack)
    made = {new_ticket_for(stack, user_id) for _ in range(5)}
    seen, cursor = [], None
    while True:
        query = f"?requester_id={user_id}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = stack.call("GET", "ticket-service", "/api/tickets/" + query).json()
        seen += [t["id"] for t in page["results"]]
        if (cursor := page["next"]) is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5


def new_ticket_for(stack, user_id: str) -> str:
    response = stack.call("POST", "ticket-service", "/api/tickets/", json={"title": "p", "requester_id": user_id})
    assert response.status_code == 201, response.text
    return response.json()["id"]
