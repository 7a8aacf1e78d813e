"""shared_core.api: JSON errors, input parsing, idempotent creation, upstream failures as 5xx."""

import json
import uuid

import pytest
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from shared_core import api
from shared_core.clients import HTTPClient, set_testing
from shared_core.testing import Reply, Upstream
from tests.testapp.models import Author

factory = RequestFactory()


def body(response: HttpResponse) -> dict:
    return json.loads(response.content)


@api.api_view("POST")
def echo(request):
    return JsonResponse(api.json_body(request))


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"{", 400, "invalid_json"),
        (b"[1]", 400, "invalid_json"),
        (b"\xff", 400, "invalid_json"),
        (b'{"a": 1}', 200, None),
    ],
)
def test_json_body_accepts_only_objects(raw, status, error):
    """json_body gives 400 invalid_json for anything but a JSON object."""
    response = echo(factory.post("/", raw, content_type="application/json"))
    assert response.status_code == status
    assert error is None or body(response)["error"] == error


def test_oversized_json_body_is_413(settings):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 JSON error, not Django's HTML 400."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = echo(factory.post("/", b'{"a": "0123456789"}', content_type="application/json"))
    assert response.status_code == 413 and body(response)["error"] == "too_large"


def test_wrong_method_is_405_json_with_allow():
    """A method the view does not take gets 405 JSON and an Allow header."""
    response = echo(factory.get("/"))
    assert (
        response.status_code == 405 and response["Allow"] == "POST" and body(response)["error"] == "method_not_allowed"
    )


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Reply(503), 502, "upstream_error"),
        (Reply(delay=3), 504, "upstream_timeout"),
        (None, 503, "upstream_unavailable"),
    ],
)
def test_upstream_failures_become_json_5xx(reply, status, error):
    """An upstream's error status, slowness and absence become 502, 504 and 503 JSON naming the call."""
    set_testing(True)
    try:
        with Upstream() as server:
            if reply is None:
                server.server.server_close()
            else:
                server.script("/x", reply)
            client = HTTPClient(server.url, deadline=0.5, retries=1, token="t")

            @api.api_view("GET")
            def view(request):
                return JsonResponse(client.get_json("/x"))

            response = view(factory.get("/"))
    finally:
        set_testing(False)
    assert response.status_code == status and body(response)["error"] == error
    assert "GET /x" in body(response)["detail"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("ab" * 16, True), (str(uuid.uuid4()), True), ("not-a-uuid", False), (None, False), (7, False), ("", False)],
)
def test_parse_uuid_names_the_field(value, ok):
    """parse_uuid returns a UUID or raises a 400 APIError naming the field."""
    if ok:
        assert api.parse_uuid(value, "f") == uuid.UUID(value)
        return
    with pytest.raises(api.APIError) as info:
        api.parse_uuid(value, "f")
    assert info.value.status == 400 and info.value.extra == {"field": "f"}


@pytest.mark.parametrize(("query", "expected"), [("", 100), ("limit=5", 5), ("limit=0", None), ("limit=x", None)])
def test_list_limit(query, expected):
    """?limit= defaults to 100 and must be a whole number from 1 to 1000."""
    request = factory.get(f"/?{query}")
    if expected is None:
        with pytest.raises(api.APIError):
            api.list_limit(request)
    else:
        assert api.list_limit(request) == expected


@pytest.mark.django_db
def test_get_or_404_for_unknown_malformed_and_deleted_ids():
    """get_or_404 answers 404 for malformed, unknown and (through objects) deleted ids."""
    author = Author.objects.create(name="a", email="a@example.com")
    assert api.get_or_404(Author.objects.all(), str(author.pk), "author") == author
    author.delete()
    for key in (str(author.pk), "nope", str(uuid.uuid4())):
        with pytest.raises(api.APIError) as info:
            api.get_or_404(Author.objects.all(), key, "author")
        assert info.value.status == 404


@pytest.mark.django_db
def test_visible_and_newest_follow_include_deleted():
    """visible() adds deleted rows only for ?include_deleted=1; newest() lists newest first."""
    first = Author.objects.create(name="a", email="a@example.com")
    second = Author.objects.create(name="b", email="b@example.com")
    second.delete()
    render = lambda a: {"id": str(a.pk)}  # noqa: E731
    assert body(api.newest(factory.get("/"), api.visible(Author, factory.get("/")), render)) == {
        "results": [{"id": str(first.pk)}]
    }
    everything = api.visible(Author, factory.get("/?include_deleted=1"))
    assert [a.pk for a in everything.order_by("-created_at")] == [second.pk, first.pk]


def test_idempotency_key_validation():
    """A printable key up to 128 characters is accepted; longer or control characters are 400."""
    assert api.idempotency_key(factory.get("/", HTTP_IDEMPOTENCY_KEY="k-1")) == "k-1"
    assert api.idempotency_key(factory.get("/")) is None
    for bad in ("k" * 129, "tab\there"):
        with pytest.raises(api.APIError):
            api.idempotency_key(factory.get("/", HTTP_IDEMPOTENCY_KEY=bad))


@pytest.mark.django_db
def test_newest_applies_uuid_filters_from_the_query_string():
    """newest(uuid_filters=...) filters by a UUID query parameter and rejects a malformed one with a 400."""
    first = Author.objects.create(name="a", email="a@example.com")
    Author.objects.create(name="b", email="b@example.com")
    render = lambda a: {"id": str(a.pk)}  # noqa: E731
    filtered = api.newest(factory.get(f"/?id={first.pk}"), Author.objects.all(), render, uuid_filters=["id"])
    assert body(filtered) == {"results": [{"id": str(first.pk)}]}
    with pytest.raises(api.APIError) as info:
        api.newest(factory.get("/?id=nope"), Author.objects.all(), render, uuid_filters=["id"])
    assert info.value.extra == {"field": "id"}
