"""soft_delete_routes: a soft-delete model's list, get, delete and restore endpoints, through a real NinjaAPI."""

import uuid

import pytest
from django.test import Client
from ninja import Router

from shared_core.api import soft_delete_routes
from tests.testapp.api import AuthorOut, api
from tests.testapp.models import Author, Ledger

pytestmark = pytest.mark.django_db

TOKEN = "s3cr3t"


@pytest.fixture
def client(settings) -> Client:
    settings.SERVICE_AUTH_TOKEN = TOKEN
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_list_get_delete_and_restore_answer_as_every_service_does(client):
    """A live author is listed and read; deleted, it is a 404 (listed with include_deleted); restored, live again."""
    author = Author.objects.create(name="Ada", email="ada@example.com")
    listed = client.get("/api/r/authors/").json()
    assert [row["id"] for row in listed["results"]] == [str(author.pk)] and listed["next"] is None
    assert client.get(f"/api/r/authors/{author.pk}/").json()["name"] == "Ada"
    assert client.delete(f"/api/r/authors/{author.pk}/").status_code == 204
    gone = client.get(f"/api/r/authors/{author.pk}/")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found" and "author" in gone.json()["detail"]
    assert client.delete(f"/api/r/authors/{author.pk}/").status_code == 404
    assert client.get("/api/r/authors/").json()["results"] == []
    assert [row["id"] for row in client.get("/api/r/authors/?include_deleted=true").json()["results"]] == [
        str(author.pk)
    ]
    restored = client.post(f"/api/r/authors/{author.pk}/restore/")
    assert restored.status_code == 200 and restored.json()["id"] == str(author.pk)
    assert client.get(f"/api/r/authors/{author.pk}/").status_code == 200


def test_a_restore_whose_unique_value_a_live_row_took_is_a_409(client):
    """Restoring an author whose email a live author took meanwhile is a 409 envelope, and nothing changes."""
    first = Author.objects.create(name="A", email="same@example.com")
    first.delete()
    Author.objects.create(name="B", email="same@example.com")
    answer = client.post(f"/api/r/authors/{first.pk}/restore/")
    assert answer.status_code == 409 and answer.json()["error"] == "conflict" and answer.json()["request_id"]
    assert Author.all_objects.get(pk=first.pk).is_deleted


def test_an_integer_keyed_model_gets_integer_paths_and_a_malformed_key_is_a_400(client):
    """A SoftDeleteModel with an integer key is read by its integer; a key that is not one is a 4xx envelope."""
    ledger = Ledger.objects.create(name="cash")
    assert client.get(f"/api/r/ledgers/{ledger.pk}/").json() == {"id": ledger.pk, "name": "cash", "is_deleted": False}
    assert client.delete(f"/api/r/ledgers/{ledger.pk}/").status_code == 204
    assert Ledger.all_objects.get(pk=ledger.pk).is_deleted
    malformed = client.get(f"/api/r/ledgers/{uuid.uuid4()}/")
    assert 400 <= malformed.status_code < 500 and malformed.json()["request_id"]


def test_only_the_routes_asked_for_exist_with_the_operation_ids_views_written_there_would_have():
    """The document has the routes named, each with the id ninja gives a view of that name in that module."""
    paths = api.get_openapi_schema()["paths"]
    ids = {op["operationId"] for path, ops in paths.items() if path.startswith("/api/r/") for op in ops.values()}
    assert ids == {
        "tests_testapp_api_list_authors",
        "tests_testapp_api_get_author",
        "tests_testapp_api_delete_author",
        "tests_testapp_api_restore_author",
        "tests_testapp_api_get_ledger",
        "tests_testapp_api_delete_ledger",
    }
    assert "/api/r/ledgers/" not in paths and "/api/r/ledgers/{ledger_id}/restore/" not in paths


def test_a_route_that_does_not_exist_is_refused_by_name():
    """routes=("update",) raises ValueError naming it and the routes there are."""
    with pytest.raises(ValueError, match=r"\['update'\].*'list', 'get', 'delete', 'restore'"):
        soft_delete_routes(Router(), Author, AuthorOut, name="a", path="/a/", module=__name__, routes=("update",))
