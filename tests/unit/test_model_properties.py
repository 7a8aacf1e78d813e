"""Property-based proof of the model layer: stale copies of rows saved, deleted and restored in any order.

A hypothesis ``RuleBasedStateMachine`` keeps a model of what the database must hold and checks it after
every step, on SQLite or PostgreSQL (TEST_DATABASE_URL). Each run is one transaction, rolled back at the end.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shared_core.models import RowDeleted
from tests.testapp.models import Author, Book, Chapter, Specimen

pytestmark = pytest.mark.django_db(transaction=False)

#: Text any database stores and gives back as it was (no NUL, no lone surrogate).
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
#: A strategy per Specimen field, each drawing values of the type the database gives back.
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "label": TEXT,
    "big": st.integers(-(2**63), 2**63 - 1),
    "blob": st.binary(max_size=8),
    "flag": st.booleans(),
    "day": st.none() | st.dates(),
    "moment": st.none() | st.datetimes(timezones=st.just(UTC)),
    "amount": st.none() | st.decimals(min_value=-9999999, max_value=9999999, places=2),
    "span": st.none() | st.timedeltas(min_value=timedelta(days=-(10**6)), max_value=timedelta(days=10**6)),
    "email": TEXT,
    "upload": st.from_regex(r"specimens/[a-z0-9]{1,8}\.txt", fullmatch=True),
    "path": TEXT,
    "ratio": st.floats(allow_nan=False, allow_infinity=False),
    "address": st.none() | st.ip_addresses(v=4).map(str),
    "number": st.integers(-(2**31), 2**31 - 1),
    "data": JSON,
    "positive_big": st.integers(0, 2**63 - 1),
    "positive": st.integers(0, 2**31 - 1),
    "positive_small": st.integers(0, 32767),
    "slug": TEXT,
    "small": st.integers(-32768, 32767),
    "text": TEXT,
    "clock": st.none() | st.times(),
    "url": TEXT,
    "token": st.none() | st.uuids(),
}
SETTINGS = settings(max_examples=50, stateful_step_count=20)


def same(name: str, a: Any, b: Any) -> bool:
    """Whether the database holds the same for ``a`` and ``b`` in field ``name`` (JSON by its text)."""
    if name == "data":
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    if name == "blob":
        return bytes(a) == bytes(b)
    return bool(a == b) and (a is None) == (b is None)


class Copy:
    """One loaded instance of the row, with what it was loaded with and what was set on it since."""

    def __init__(self, instance: Specimen, base: dict[str, Any]) -> None:
        self.instance, self.base, self.set = instance, dict(base), {}

    def expected_changes(self) -> set[str]:
        return {name for name, value in self.set.items() if not same(name, value, self.base[name])}


class SpecimenCopies(RuleBasedStateMachine):
    """Copies of one row, loaded at different times, changed, saved, deleted and restored in any order."""

    copies = Bundle("copies")

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.pk = Specimen.objects.create().pk
        self.row = {name: getattr(Specimen.objects.get(pk=self.pk), name) for name in VALUES}
        self.deleted = False
        self.copies_made: list[Copy] = []

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def stored(self) -> Specimen:
        return Specimen.all_objects.get(pk=self.pk)

    @initialize(target=copies)
    def first_copy(self) -> Copy:
        return self.load()

    @rule(target=copies)
    def load(self) -> Copy:
        """Another request loads the row as it is now."""
        self.copies_made.append(Copy(self.stored(), self.row))
        return self.copies_made[-1]

    @rule(copy=copies, data=st.data())
    def set_field(self, copy: Copy, data: st.DataObject) -> None:
        """A copy's field is set to any value."""
        name = data.draw(st.sampled_from(sorted(VALUES)))
        value = data.draw(VALUES[name])
        setattr(copy.instance, name, value)
        copy.set[name] = value

    @rule(copy=copies)
    def save(self, copy: Copy) -> None:
        """A copy is saved: its changed fields are written, unless it was loaded live and the row is deleted."""
        changes = copy.expected_changes()
        if not copy.instance.is_deleted and self.deleted:
            with pytest.raises(RowDeleted), transaction.atomic():
                copy.instance.save()
            return
        with transaction.atomic():
            copy.instance.save()
        for name in changes:
            self.row[name] = copy.set[name]
        copy.base.update(copy.set)
        copy.set.clear()

    @rule(copy=copies)
    def delete(self, copy: Copy) -> None:
        """A copy is soft-deleted: the row is deleted once, and a copy that lost the race holds it deleted."""
        loaded_live = not copy.instance.is_deleted
        with transaction.atomic():
            result = copy.instance.soft_delete()
        lost = loaded_live and self.deleted
        assert result[0] == (1 if loaded_live and not self.deleted else 0)
        self.deleted = self.deleted or loaded_live
        if lost:
            self.adopt(copy)

    @rule(copy=copies)
    def restore(self, copy: Copy) -> None:
        """A copy loaded deleted is restored: only the deletion it saw is undone, and it holds the row after."""
        if not copy.instance.is_deleted:
            assert copy.instance.restore() == (0, {})
            return
        expected = self.deleted and copy.instance.deleted_at == self.stored().deleted_at
        with transaction.atomic():
            result = copy.instance.restore()
        assert result[0] == (1 if expected else 0)
        self.deleted = self.deleted and not expected
        self.adopt(copy)

    def adopt(self, copy: Copy) -> None:
        """After a restore or a lost delete, a copy holds the stored row in every field it has not changed."""
        assert copy.instance.is_deleted == self.deleted
        pending = copy.expected_changes()
        copy.set = {name: value for name, value in copy.set.items() if name in pending}
        copy.base.update({name: value for name, value in self.row.items() if name not in pending})

    @invariant()
    def the_row_holds_every_saved_change(self) -> None:
        """No lost update: every field holds the last value a save wrote to it; no resurrection."""
        stored = self.stored()
        for name, value in self.row.items():
            assert same(name, getattr(stored, name), value), name
        assert stored.is_deleted == self.deleted

    @invariant()
    def changed_fields_is_exact(self) -> None:
        """Each copy's changed_fields() names exactly the fields set to a value the database would store differently."""
        for copy in self.copies_made:
            assert set(copy.instance.changed_fields() or ()) == copy.expected_changes()


class Cascade(RuleBasedStateMachine):
    """An author, two books and their chapters, each deleted and restored through copies loaded at any time."""

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        author = Author.objects.create(name="Ada", email=f"{uuid.uuid4().hex}@example.com")
        #: Each row by a name that is the same in every run (draws pick names, never random keys).
        self.rows: dict[str, Any] = {"author": author}
        self.parent: dict[str, str | None] = {"author": None}
        for i in range(2):
            book = self.rows[f"book{i}"] = Book.objects.create(author=author, title=f"B{i}")
            self.parent[f"book{i}"] = "author"
            for n in range(2):
                self.rows[f"chapter{i}.{n}"] = Chapter.objects.create(book=book, number=n)
                self.parent[f"chapter{i}.{n}"] = f"book{i}"
        #: The deletion that took each row (a number), or None while it is live.
        self.taken_by: dict[str, int | None] = dict.fromkeys(self.rows)
        self.deletions = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def load(self, name: str) -> Any:
        """A fresh copy of the row called ``name``."""
        row = self.rows[name]
        return type(row).all_objects.get(pk=row.pk)

    def below(self, name: str) -> list[str]:
        """``name`` and every row under it."""
        children = [child for child, parent in self.parent.items() if parent == name]
        return [name, *(row for child in children for row in self.below(child))]

    def take(self, name: str, deletion: int | None = None) -> None:
        """A new deletion takes ``name`` if it is live, and the live rows under it through live rows only."""
        if self.taken_by[name] is not None:
            return
        if deletion is None:
            self.deletions += 1
        self.taken_by[name] = deletion or self.deletions
        for child, parent in self.parent.items():
            if parent == name:
                self.take(child, deletion or self.deletions)

    @rule(name=st.sampled_from(["author", "book0", "book1", "chapter0.0", "chapter0.1", "chapter1.0", "chapter1.1"]))
    def delete(self, name: str) -> None:
        """Any row is deleted: it and its live descendants are taken by this deletion, the rest kept as they were."""
        with transaction.atomic():
            self.load(name).soft_delete()
        self.take(name)

    @precondition(lambda self: any(self.taken_by.values()))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        """A deleted row is restored: it and exactly the rows below it that its deletion took come back."""
        name = data.draw(st.sampled_from([row for row, by in self.taken_by.items() if by]))
        with transaction.atomic():
            self.load(name).restore()
        deletion = self.taken_by[name]
        for row in self.below(name):
            if self.taken_by[row] == deletion:
                self.taken_by[row] = None

    @rule(name=st.sampled_from(["book0", "book1"]))
    def rename_through_a_stale_copy(self, name: str) -> None:
        """A book loaded live and saved after its deletion raises RowDeleted and stays deleted (no resurrection)."""
        stale = self.load(name)
        if stale.is_deleted:
            return
        self.load(name).soft_delete()
        self.take(name)
        stale.title = "Renamed"
        with pytest.raises(RowDeleted), transaction.atomic():
            stale.save()

    @invariant()
    def every_row_is_live_exactly_when_no_deletion_holds_it(self) -> None:
        """Each row's is_deleted matches the model, and the rows one deletion took share a stamp of their own."""
        stamps: dict[int, set[Any]] = {}
        for name in self.rows:
            row, by = self.load(name), self.taken_by[name]
            assert row.is_deleted == (by is not None), name
            if by is None:
                assert row.deleted_at is None, name
            else:
                stamps.setdefault(by, set()).add(row.deleted_at)
        assert all(len(stamp) == 1 for stamp in stamps.values())
        assert len({min(stamp) for stamp in stamps.values()}) == len(stamps)


def test_stale_copies_of_a_row_with_every_field_type_never_lose_an_update():
    """Interleaved saves, deletes and restores of copies: no lost update, no resurrection, exact changed_fields()."""
    run_state_machine_as_test(SpecimenCopies, settings=SETTINGS)


def test_a_restore_brings_back_exactly_what_its_deletion_took():
    """Deletes and restores anywhere in a three-level tree: each restore undoes exactly its own deletion."""
    run_state_machine_as_test(Cascade, settings=SETTINGS)
