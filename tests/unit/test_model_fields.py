"""BaseModel.save() writes what changed, for every concrete field type, on SQLite or PostgreSQL."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp.models import Author, Specimen

pytestmark = pytest.mark.django_db

#: A value of every field of Specimen, other than the one it is created with.
CHANGES: dict[str, Any] = {
    "big": 2**40,
    "blob": b"\x00\x01changed",
    "flag": True,
    "day": date(1969, 7, 20),
    "moment": datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
    "amount": Decimal("12.34"),
    "span": timedelta(days=1, microseconds=5),
    "email": "changed@example.com",
    "upload": "specimens/changed.txt",
    "path": "/tmp/changed",
    "ratio": 0.25,
    "address": "10.0.0.2",
    "number": -7,
    "data": {"changed": [1, 2.5, None, "x"]},
    "positive_big": 2**50,
    "positive": 9,
    "positive_small": 3,
    "slug": "changed-slug",
    "small": -3,
    "text": "changed text",
    "clock": time(23, 59, 58, 1000),
    "url": "https://example.com/changed",
    "token": uuid.UUID(int=7),
}


def make_specimen() -> Specimen:
    """A row with a value in every field (none of them CHANGES')."""
    author = Author.objects.create(name="Ada", email=f"{uuid.uuid4().hex}@example.com")
    return Specimen.objects.create(
        label="first",
        big=1,
        blob=b"\xff",
        flag=False,
        day=date(2020, 1, 2),
        moment=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        amount=Decimal("1.50"),
        span=timedelta(seconds=3),
        email="a@example.com",
        upload="specimens/a.txt",
        path="/tmp/a",
        ratio=1.5,
        address="10.0.0.1",
        number=1,
        data={"a": 1, "list": [True, 1.0]},
        positive_big=1,
        positive=1,
        positive_small=1,
        slug="a",
        small=1,
        text="a",
        clock=time(1, 2, 3),
        url="https://example.com/a",
        token=uuid.UUID(int=1),
        author=author,
        twin=author,
    )


def stored(specimen: Specimen, name: str) -> Any:
    """A field's value as the database holds it now, bytes as bytes."""
    value = Specimen.objects.values_list(name, flat=True).get(pk=specimen.pk)
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_two_copies_changing_different_fields_both_keep_their_change(name):
    """One copy changes a field of any type, another copy changes the label: neither save undoes the other."""
    specimen = make_specimen()
    first, second = Specimen.objects.get(pk=specimen.pk), Specimen.objects.get(pk=specimen.pk)
    setattr(first, name, CHANGES[name])
    first.save()
    second.label = "second"
    second.save()
    assert stored(specimen, name) == CHANGES[name]
    assert stored(specimen, "label") == "second"


def test_two_copies_changing_different_keys_both_keep_their_change():
    """A foreign key and a one-to-one key, changed on two copies: both changes stay."""
    specimen = make_specimen()
    other = Author.objects.create(name="Grace", email="grace@example.com")
    first, second = Specimen.objects.get(pk=specimen.pk), Specimen.objects.get(pk=specimen.pk)
    first.author = other
    first.save()
    second.twin = other
    second.save()
    assert Specimen.objects.values_list("author", "twin").get(pk=specimen.pk) == (other.pk, other.pk)


def test_a_freshly_loaded_row_has_no_changed_field_even_after_every_field_is_read():
    """changed_fields() of a loaded row is empty, also once the file, JSON and binary fields were read."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    for field in Specimen._meta.concrete_fields:
        getattr(loaded, field.name)
    assert loaded.changed_fields() == []


def test_a_saved_row_has_no_changed_field():
    """After create() and after a save, nothing counts as changed until something is set."""
    specimen = make_specimen()
    assert specimen.changed_fields() == []
    specimen.data["added"] = True
    specimen.save()
    assert specimen.changed_fields() == []


@pytest.mark.parametrize(
    ("name", "equal"),
    [
        ("day", "2020-01-02"),
        ("amount", Decimal("1.5")),
        ("number", 1.0),
        ("flag", 0),
        ("upload", "specimens/a.txt"),
        ("token", "00000000-0000-0000-0000-000000000001"),
        ("data", {"list": [True, 1.0], "a": 1}),
        ("blob", bytearray(b"\xff")),
        ("span", timedelta(seconds=3, microseconds=0)),
    ],
)
def test_setting_a_value_the_database_stores_the_same_is_not_a_change(name, equal):
    """A value equal in the database to the loaded one (another type or spelling) is no change."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    setattr(loaded, name, equal)
    assert loaded.changed_fields() == []


@pytest.mark.parametrize(
    ("name", "different"),
    [
        ("data", {"a": True, "list": [True, 1.0]}),
        ("data", {"a": 1.0, "list": [True, 1.0]}),
        ("amount", Decimal("1.51")),
        ("day", "2020-01-03"),
        ("blob", b"\xfe"),
    ],
)
def test_a_value_stored_differently_is_a_change(name, different):
    """1, 1.0 and true are three JSON values; any other date, amount or bytes is a change."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    setattr(loaded, name, different)
    assert loaded.changed_fields() == [name]


def test_a_json_value_changed_in_place_is_a_change_and_is_written():
    """Appending to a loaded JSON list counts as a change, and save() writes it."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    loaded.data["list"].append("more")
    assert loaded.changed_fields() == ["data"]
    loaded.save()
    assert stored(loaded, "data") == {"a": 1, "list": [True, 1.0, "more"]}


def test_a_value_the_field_cannot_convert_counts_as_changed():
    """An unconvertible value is a change, so save() reaches the field's own error instead of skipping it."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    loaded.day = "not a date"
    assert loaded.changed_fields() == ["day"]


def test_an_unchanged_save_writes_only_updated_at():
    """A save with nothing changed names updated_at alone in its UPDATE, whatever the field types."""
    loaded = Specimen.objects.get(pk=make_specimen().pk)
    with CaptureQueriesContext(connection) as ctx:
        loaded.save()
    (update,) = [q["sql"].upper() for q in ctx.captured_queries if q["sql"].upper().startswith("UPDATE")]
    assigned = update.split(" WHERE ")[0]
    assert assigned.count(" = ") == 1 and '"UPDATED_AT"' in assigned
