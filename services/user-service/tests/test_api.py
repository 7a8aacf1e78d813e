"""user-service's API through Django's test client."""

import uuid

import pytest
from django.db.models.signals import pre_save
from user_service.models import User

from shared_core.testing import undocumented_routes


def create(api, **fields):
    body = {"email": "ada@example.com", "name": "Ada", **fields}
    return api.post("/api/users/", body, content_type="application/json")


def test_create_get_and_list_users(api):
    """POST creates a user (201); GET shows it; the list holds it."""
    created = create(api)
    assert created.status_code == 201
    user_id = created.json()["id"]
    assert api.get(f"/api/users/{user_id}/").json()["email"] == "ada@example.com"
    assert [u["id"] for u in api.get("/api/users/").json()["results"]] == [user_id]


def test_delete_hides_keeps_and_restores(api):
    """DELETE is soft (204): hidden, listed with include_deleted, still in the table, and restorable."""
    user_id = create(api).json()["id"]
    assert api.delete(f"/api/users/{user_id}/").status_code == 204
    assert api.get(f"/api/users/{user_id}/").status_code == 404
    assert api.get("/api/users/").json()["results"] == []
    listed = api.get("/api/users/?include_deleted=1").json()["results"]
    assert [u["is_deleted"] for u in listed] == [True]
    assert User.all_objects.filter(pk=user_id, is_deleted=True).exists()
    restored = api.post(f"/api/users/{user_id}/restore/")
    assert restored.status_code == 200 and restored.json()["is_deleted"] is False


def test_email_reusable_after_delete_but_not_while_live(api):
    """A live duplicate email is a 409; after a soft delete the email can be used again."""
    first = create(api).json()["id"]
    assert create(api).status_code == 409
    api.delete(f"/api/users/{first}/")
    assert create(api).status_code == 201
    assert api.post(f"/api/users/{first}/restore/").status_code == 409


def test_patch_updates_fields(api):
    """PATCH changes only the given fields."""
    user_id = create(api).json()["id"]
    patched = api.patch(f"/api/users/{user_id}/", {"name": "Ada L."}, content_type="application/json")
    assert (
        patched.status_code == 200
        and patched.json()["name"] == "Ada L."
        and patched.json()["email"] == "ada@example.com"
    )


def test_department_assignment(api):
    """A user can belong to a live department; an unknown department is a 404 naming the field."""
    dept = api.post("/api/departments/", {"name": "Support"}, content_type="application/json").json()["id"]
    assert create(api, department_id=dept).json()["department_id"] == dept
    bad = create(api, email="b@example.com", department_id=str(uuid.uuid4()))
    assert bad.status_code == 404 and bad.json()["field"] == "department_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No email"}, "email"),
        ({"email": "not-an-address", "name": "x"}, "email"),
        ({"email": "a@example.com", "name": 7}, "name"),
        ({"email": "a@example.com", "name": "x" * 201}, "name"),
        ({"email": "a@example.com", "name": "x", "department_id": "nope"}, "department_id"),
    ],
)
def test_bad_fields_are_400_naming_the_field(api, body, field):
    """Each invalid field gets a 400 with a JSON body that names it."""
    response = api.post("/api/users/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == field


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"\xff\xfe", b"null"])
def test_malformed_json_is_400(api, raw):
    """A body that is not a JSON object is a 400 with a JSON error."""
    response = api.generic("POST", "/api/users/", raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("user_id", "status", "error"),
    [
        ("not-a-uuid", 400, "invalid_field"),
        ("1' OR '1'='1", 400, "invalid_field"),
        (str(uuid.uuid4()), 404, "not_found"),
    ],
)
def test_unknown_or_malformed_id_is_json(api, user_id, status, error):
    """A malformed id is a 400 naming user_id, an unknown one a 404; both JSON, never a 500."""
    response = api.get(f"/api/users/{user_id}/")
    assert response.status_code == status and response.json()["error"] == error


def test_token_required_and_health_open(client, db):
    """API calls without the token are 401; /healthz and /readyz need none."""
    assert client.get("/api/users/").status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ready"}


def test_unknown_path_and_wrong_method_are_json(api):
    """An unknown path is a JSON 404 and a wrong method a JSON 405."""
    assert api.get("/nope").json()["error"] == "not_found"
    response = api.put("/api/users/")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_every_route_is_in_the_openapi_document(db):
    """Each URL pattern of the service appears in its generated OpenAPI document."""
    assert undocumented_routes() == []


def test_restoring_a_user_whose_email_a_live_user_took_is_409(api):
    """Restore after a new user took the email is a 409 naming the clash, and the old user stays deleted."""
    old = create(api, email="same@example.com").json()["id"]
    assert api.delete(f"/api/users/{old}/").status_code == 204
    assert create(api, email="same@example.com").status_code == 201
    response = api.post(f"/api/users/{old}/restore/")
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert User.all_objects.get(pk=old).is_deleted


def test_patch_with_null_email_or_name_is_400_and_null_department_clears_it(api):
    """PATCH refuses null for email or name (the document says string) and takes null to clear the department."""
    user = create(api).json()["id"]
    for field in ("email", "name"):
        response = api.patch(f"/api/users/{user}/", {field: None}, content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == field
    cleared = api.patch(f"/api/users/{user}/", {"department_id": None}, content_type="application/json")
    assert cleared.status_code == 200 and cleared.json()["department_id"] is None


def test_an_email_that_lower_casing_lengthens_past_254_is_a_400(api):
    """254 characters with İ grow when lower-cased: a 400 naming email, nothing stored."""
    email = "a@" + "İ" * 60 + "." + "b" * (254 - 63 - 4) + ".com"
    assert len(email) == 254 and len(email.lower()) > 254
    answer = create(api, email=email)
    assert answer.status_code == 400 and answer.json()["field"] == "email"
    assert not User.all_objects.exists()


def test_a_patch_racing_a_delete_is_a_404_and_never_brings_the_user_back(api):
    """A DELETE between the PATCH's read and its write: 404 naming the user, and nothing written."""
    user_id = create(api).json()["id"]

    def delete_meanwhile(sender, instance, **kwargs):
        User.objects.filter(pk=instance.pk).delete()

    pre_save.connect(delete_meanwhile, sender=User)
    try:
        answer = api.patch(f"/api/users/{user_id}/", {"name": "Grace"}, content_type="application/json")
    finally:
        pre_save.disconnect(delete_meanwhile, sender=User)
    assert answer.status_code == 404 and user_id in answer.json()["detail"]
    assert User.all_objects.values_list("name", flat=True).get(pk=user_id) == "Ada"


def test_two_patches_of_different_fields_keep_both(api):
    """A PATCH of name whose read came before another PATCH of email keeps that email."""
    user_id = create(api).json()["id"]

    def patch_email_meanwhile(sender, instance, **kwargs):
        pre_save.disconnect(patch_email_meanwhile, sender=User)
        api.patch(f"/api/users/{user_id}/", {"email": "grace@example.com"}, content_type="application/json")

    pre_save.connect(patch_email_meanwhile, sender=User)
    try:
        assert (
            api.patch(f"/api/users/{user_id}/", {"name": "Grace"}, content_type="application/json").status_code == 200
        )
    finally:
        pre_save.disconnect(patch_email_meanwhile, sender=User)
    assert User.objects.values_list("name", "email").get(pk=user_id) == ("Grace", "grace@example.com")
