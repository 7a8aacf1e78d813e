"""shared_core.api on django-ninja: the error envelope, input that databases refuse, pagination, idempotency."""

import json
import re
from datetime import UTC, datetime
from uuid import UUID

import pytest
from django.http import HttpResponse
from django.test import Client
from hypothesis import given, strategies as st

from shared_core._web.idempotency import create_once
from shared_core._web.pagination import CURSOR_PATTERN, _moment, cursor_after
from shared_core.clients import Resilience
from shared_core.testing import Reply, Upstream, set_testing, undocumented_routes
from tests.testapp.api import ReceiptIn
from tests.testapp.models import Author, Receipt

TOKEN = "unit-test-service-token"


@pytest.fixture
def client() -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def post(client: Client, path: str, raw: bytes | str, **extra: str):
    return client.generic("POST", f"/api/t{path}", raw, content_type="application/json", **extra)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[1]", b"\xff", b"null", b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
)
def test_a_body_that_is_not_a_json_object_is_invalid_json(client, raw):
    """Broken, non-object and 10,000-deep JSON bodies are 400 invalid_json, never a RecursionError 500."""
    response = post(client, "/when/", raw)
    assert response.status_code == 400 and response.json()["error"] == "invalid_json"


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "problem"), [("\ud800", "unicode"), ("a\x00b", "pattern"), (" \t\n", "pattern")])
def test_text_a_database_cannot_store_is_400_naming_the_field(client, value, problem):
    """A lone surrogate, a NUL or only blanks in a JSON string is a 400 naming the field, not a 500 at write time."""
    response = post(client, "/authors/", json.dumps({"name": value, "email": "a@example.com"}))
    assert response.status_code == 400 and response.json()["field"] == "name"
    assert problem in response.json()["detail"] and Author.all_objects.count() == 0


def test_a_time_outside_the_representable_range_is_400(client):
    """A zone that pushes the UTC time past year 9999 is a 400 naming the field, not an OverflowError."""
    response = post(client, "/when/", json.dumps({"at": "9999-12-31T23:59:59.999999-23:59"}))
    assert response.status_code == 400 and response.json()["field"] == "at"
    naive = post(client, "/when/", json.dumps({"at": "2026-01-01T00:00:00"}))
    assert naive.status_code == 400 and naive.json()["field"] == "at"


def test_oversized_body_is_413(client, settings):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 JSON error, not Django's HTML 400."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = post(client, "/when/", json.dumps({"at": "2026-01-01T00:00:00+00:00"}))
    assert response.status_code == 413 and response.json()["error"] == "too_large"


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["%C2%B2", "0", "1001", "x", "1.5", ""])
def test_a_limit_that_is_not_a_whole_number_in_range_is_400_naming_it(client, limit):
    """?limit= must be a whole number from 1 to 1000 (a superscript two is not), else 400 naming limit."""
    response = client.get(f"/api/t/authors/?limit={limit}")
    assert response.status_code == 400 and response.json()["field"] == "limit"


@pytest.mark.django_db
def test_keyset_pages_reach_every_row_once_even_with_equal_timestamps(client):
    """Walking next cursors visits every row once, newest first, though 20 rows share one created_at."""
    same = Author(name="x", email="x@example.com").created_at
    Author.objects.bulk_create(Author(name=f"a{i}", email=f"a{i}@example.com", created_at=same) for i in range(20))
    Author.objects.bulk_create(Author(name=f"b{i}", email=f"b{i}@example.com") for i in range(5))
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get("/api/t/authors/", {"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["id"] for row in page["results"]]
        pages, cursor = pages + 1, page["next"]
        if cursor is None:
            break
    expected = [str(pk) for pk in Author.objects.order_by("-created_at", "-pk").values_list("pk", flat=True)]
    assert seen == expected and len(set(seen)) == 25 and pages == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    ["nope", "12_" + "0" * 31, "--1_" + "0" * 32, "+1_" + "0" * 32, "1" * 19 + "_" + "0" * 32, "1_" + "G" * 32],
)
def test_a_malformed_cursor_is_400_naming_it(client, cursor):
    """A cursor not of the form [-]<microseconds>_<32 hex digits> is a 400 naming cursor."""
    response = client.get("/api/t/authors/", {"cursor": cursor})
    assert response.status_code == 400 and response.json()["field"] == "cursor"


@pytest.mark.django_db
def test_any_well_formed_cursor_is_a_position(client):
    """A well-formed cursor that no page gave still answers 200: rows before that time and id, maybe none."""
    Author.objects.create(name="a", email="a@x.org")
    assert client.get("/api/t/authors/", {"cursor": "0_" + "0" * 32}).json() == {"results": [], "next": None}
    assert len(client.get("/api/t/authors/", {"cursor": "9" * 18 + "_" + "f" * 32}).json()["results"]) == 1
    assert client.get("/api/t/authors/", {"cursor": "-" + "9" * 18 + "_" + "f" * 32}).json()["results"] == []


@pytest.mark.django_db
def test_pages_reach_rows_from_year_1_to_9999(client):
    """Rows created before 1970 (negative cursors) and at the ends of the calendar are all reached, once each."""
    moments = [datetime.min, datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(1970, 1, 1), datetime.max]
    Author.objects.bulk_create(
        Author(name=f"a{i}", email=f"a{i}@example.com", created_at=moment.replace(tzinfo=UTC))
        for i, moment in enumerate(moments)
    )
    seen, cursor = [], None
    while True:
        response = client.get("/api/t/authors/", {"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        seen += [row["name"] for row in response.json()["results"]]
        if (cursor := response.json()["next"]) is None:
            break
    assert seen == ["a3", "a2", "a1", "a0"]


@given(st.datetimes(timezones=st.just(UTC)), st.uuids())
def test_every_next_cursor_is_accepted_back_at_the_time_it_names(moment, key):
    """For any created_at from year 1 to 9999, the cursor matches CURSOR_PATTERN and names that instant."""
    cursor = cursor_after(Author(created_at=moment, id=key))
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    micros, _, hex_key = cursor.partition("_")
    assert _moment(int(micros)) == moment and hex_key == key.hex


@pytest.mark.django_db
def test_include_deleted_lists_deleted_rows_only_when_asked(client):
    """The list shows live rows; ?include_deleted=true adds the soft-deleted ones."""
    live, gone = Author.objects.create(name="a", email="a@x.org"), Author.objects.create(name="b", email="b@x.org")
    gone.delete()
    assert [r["id"] for r in client.get("/api/t/authors/").json()["results"]] == [str(live.pk)]
    everything = client.get("/api/t/authors/?include_deleted=true").json()["results"]
    assert [r["id"] for r in everything] == [str(gone.pk), str(live.pk)]


@pytest.mark.django_db
def test_restore_that_clashes_with_a_live_row_is_409(client):
    """Restoring a row whose unique value a live row took meanwhile is a 409, not an IntegrityError 500."""
    old = Author.objects.create(name="old", email="same@example.com")
    old.delete()
    Author.objects.create(name="new", email="same@example.com")
    response = client.post(f"/api/t/authors/{old.pk}/restore/")
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert Author.all_objects.get(pk=old.pk).is_deleted


@pytest.mark.django_db
def test_same_key_same_body_replays_and_another_body_is_422(client):
    """One Idempotency-Key: the same body replays the first row (200), another body is refused (422), and once
    that row is deleted a replay is a 409, never a second row."""
    key = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = post(client, "/receipts/", json.dumps({"amount": 5, "note": "a"}), **key)
    again = post(client, "/receipts/", json.dumps({"note": "a", "amount": 5}), **key)
    other = post(client, "/receipts/", json.dumps({"amount": 6, "note": "a"}), **key)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 422)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert other.json()["error"] == "idempotency_key_reused" and Receipt.all_objects.count() == 1
    Receipt.objects.get(pk=first.json()["id"]).delete()
    gone = post(client, "/receipts/", json.dumps({"amount": 5, "note": "a"}), **key)
    assert gone.status_code == 409 and gone.json()["error"] == "created_then_deleted"
    assert Receipt.all_objects.count() == 1


@pytest.fixture
def two_callers(settings) -> tuple[Client, Client]:
    """Clients of two callers, alpha and beta, each with its own token."""
    settings.SERVICE_ACCEPTED_TOKENS = {"alpha": ["alpha-token"], "beta": ["beta-token"]}
    return Client(HTTP_AUTHORIZATION="Bearer alpha-token"), Client(HTTP_AUTHORIZATION="Bearer beta-token")


@pytest.mark.django_db
def test_an_idempotency_key_is_scoped_to_its_caller(two_callers):
    """Two callers that send one key each get a row of their own, and each replay answers the caller's own row."""
    alpha, beta = two_callers
    key = {"HTTP_IDEMPOTENCY_KEY": "shared-key"}
    body = json.dumps({"amount": 5})
    alpha_first, beta_first = post(alpha, "/receipts/", body, **key), post(beta, "/receipts/", body, **key)
    assert (alpha_first.status_code, beta_first.status_code) == (201, 201)
    assert alpha_first.json()["id"] != beta_first.json()["id"]
    assert post(alpha, "/receipts/", body, **key).json()["id"] == alpha_first.json()["id"]
    assert post(beta, "/receipts/", body, **key).json()["id"] == beta_first.json()["id"]
    other_body = post(beta, "/receipts/", json.dumps({"amount": 6}), **key)
    assert other_body.status_code == 422 and Receipt.all_objects.count() == 2
    stored = dict(Receipt.all_objects.values_list("idempotency_caller", "pk"))
    assert stored == {"alpha": UUID(alpha_first.json()["id"]), "beta": UUID(beta_first.json()["id"])}


@pytest.mark.django_db
def test_a_row_stored_before_keys_were_scoped_is_replayed_to_any_caller(two_callers):
    """A row with no caller (created before the upgrade, or outside a request) answers every caller's replay."""
    alpha, beta = two_callers
    earlier = create_once(
        HttpResponse(), Receipt, "old-key", ReceiptIn(amount=5), lambda f: Receipt.objects.create(amount=5, **f)
    )
    assert earlier.value.idempotency_caller == ""
    for client in (alpha, beta):
        replay = post(client, "/receipts/", json.dumps({"amount": 5}), HTTP_IDEMPOTENCY_KEY="old-key")
        assert replay.status_code == 200 and replay.json()["id"] == str(earlier.value.pk)
    assert Receipt.all_objects.count() == 1


@pytest.mark.django_db
def test_a_create_that_drops_the_idempotency_fields_is_refused_and_stores_nothing():
    """create() must store the fields create_once hands it: one that ignores them raises TypeError, no row kept."""
    with pytest.raises(TypeError, match=r"Receipt\.idempotency_key"):
        create_once(HttpResponse(), Receipt, "k", ReceiptIn(amount=1), lambda f: Receipt.objects.create(amount=1))
    assert Receipt.all_objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 129, "tab\there", ""])
def test_a_malformed_idempotency_key_is_400(client, key):
    """An Idempotency-Key over 128 characters, with control characters, or empty is a 400."""
    response = post(client, "/receipts/", json.dumps({"amount": 1}), HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and Receipt.all_objects.count() == 0


@pytest.mark.django_db
def test_methods_follow_http_head_405_and_204(client):
    """HEAD is GET without a body; a wrong method is 405 JSON whose Allow lists HEAD; 204 has no Content-Type."""
    Author.objects.create(name="a", email="a@x.org")
    get, head = client.get("/api/t/authors/"), client.head("/api/t/authors/")
    assert head.status_code == 200 and head.content == b"" and head["Content-Length"] == str(len(get.content))
    refused = client.put("/api/t/authors/")
    assert refused.status_code == 405 and refused.json()["error"] == "method_not_allowed"
    assert refused["Allow"] == "GET, HEAD, POST"
    author = Author.objects.create(name="b", email="b@x.org")
    deleted = client.delete(f"/api/t/authors/{author.pk}/")
    assert deleted.status_code == 204 and "Content-Type" not in deleted and deleted.content == b""


def test_health_checks_are_json_for_every_method(client):
    """POST, PUT and DELETE on /healthz and /readyz are JSON 405s, not Django's CSRF HTML page."""
    csrf_checking = Client(enforce_csrf_checks=True)
    # POST to the authors list is an operation: without a body it is a 400 naming the body, not a 403 page.
    expected = {("/api/t/authors/", "post"): 400}
    for path in ("/readyz", "/api/t/authors/"):
        for method in ("post", "put", "delete"):
            response = getattr(csrf_checking, method)(path, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
            assert response.status_code in (400, 405) and response["Content-Type"] == "application/json", (path, method)
            assert response.status_code == expected.get((path, method), 405), (path, method)


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Reply(500), 502, "upstream_error"),
        (Reply(503), 503, "upstream_unavailable"),
        (Reply(delay=3), 504, "upstream_timeout"),
        (None, 503, "upstream_unavailable"),
    ],
)
def test_upstream_failures_become_json_5xx(client, settings, reply, status, error):
    """An upstream's error status, slowness and absence become 502, 504 and 503 JSON naming the call; its 503 a 503."""
    set_testing(True)
    try:
        with Upstream() as server:
            if reply is None:
                server.server.server_close()
            else:
                server.script("/x", reply)
            settings.TEST_UPSTREAM_URL = server.url
            response = client.get("/api/t/upstream/")
    finally:
        set_testing(False)
    assert response.status_code == status and response.json()["error"] == error
    assert "GET /x" in response.json()["detail"]


def test_an_open_circuit_is_a_json_503_with_the_wait_left_as_retry_after(client, settings):
    """Once failures open the upstream's circuit, the view answers 503 upstream_unavailable at once, with
    Retry-After the circuit's remaining open time (whole seconds, at least 1), and nothing is sent."""
    settings.HTTP_CLIENT_RESILIENCE = Resilience(minimum_calls=2, open_seconds=30, retry_budget=False)
    set_testing(True)
    try:
        with Upstream() as server:
            server.script("/x", Reply(500))
            settings.TEST_UPSTREAM_URL = server.url
            for _ in range(2):
                assert client.get("/api/t/upstream/").status_code == 502
            response = client.get("/api/t/upstream/")
            assert len(server.hits("/x")) == 2  # 500 is not retried, and the third call was not sent
    finally:
        set_testing(False)
    assert response.status_code == 503 and response.json()["error"] == "upstream_unavailable"
    assert "circuit" in response.json()["detail"] and 29 <= int(response["Retry-After"]) <= 30


def test_an_operation_for_named_callers_refuses_others_with_403(client, settings):
    """ServiceToken("ticket-service") admits ticket-service and gives another authenticated caller 403 JSON."""
    settings.SERVICE_ACCEPTED_TOKENS = {"operator": ["op-token"], "ticket-service": ["ts-token"]}
    assert Client(HTTP_AUTHORIZATION="Bearer ts-token").get("/api/t/tickets-only/").json() == {
        "caller": "ticket-service"
    }
    refused = Client(HTTP_AUTHORIZATION="Bearer op-token").get("/api/t/tickets-only/")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"


def test_the_document_lists_every_operation_with_its_errors(client):
    """/api/openapi.json is generated from the code, declares the bearer token, and documents the error envelope."""
    document = client.get("/api/openapi.json").json()
    assert {"/healthz", "/readyz", "/api/t/authors/", "/api/t/receipts/"} <= set(document["paths"])
    create = document["paths"]["/api/t/receipts/"]["post"]
    assert create["security"] == [{"ServiceToken": []}] and "422" in create["responses"]
    assert document["components"]["securitySchemes"]["ServiceToken"]["scheme"] == "bearer"


def test_undocumented_routes_reports_plain_views_beside_the_api():
    """A URL pattern the OpenAPI document lacks (a plain Django view) is reported; the API's own are not."""
    missing = undocumented_routes()
    assert "/api/whoami/" in missing and "/api/slow-sql/" in missing
    assert not any(route.startswith("/api/t/") for route in missing) and "/readyz" not in missing


@pytest.mark.django_db
def test_the_api_checks_the_token_itself_without_the_middleware(settings):
    """Without ServiceTokenMiddleware (a bare baseline), operations still take only a valid token."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "shared_core._web.middleware.ServiceTokenMiddleware"]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/api/t/authors/").status_code == 200
    refused = Client(HTTP_AUTHORIZATION="Bearer wrong").get("/api/t/authors/")
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"


@pytest.mark.django_db
def test_readyz_is_503_while_this_releases_migrations_are_not_applied(client, monkeypatch):
    """With one of the code's migrations unrecorded, /readyz is 503 schema_behind; recorded again, it is ready."""
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    from shared_core._web import db as db

    monkeypatch.setattr(db, "_current_schemas", set())
    recorder = MigrationRecorder(connection)
    latest = recorder.migration_qs.order_by("-id").first()
    recorder.record_unapplied(latest.app, latest.name)
    behind = client.get("/readyz")
    assert behind.status_code == 503 and behind.json()["error"] == "schema_behind"
    recorder.record_applied(latest.app, latest.name)
    assert client.get("/readyz").json() == {"status": "ready"}
