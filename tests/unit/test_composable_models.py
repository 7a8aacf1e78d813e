"""BaseModel is the sum of UUIDModel, TimestampedModel, ChangeTrackingModel and SoftDeleteModel; each works alone."""

import pytest
from django.db import transaction
from django.db.models import BigAutoField

from shared_core.models import (
    BaseModel,
    ChangeTrackingModel,
    DeleteResult,
    Deletion,
    RowDeleted,
    SoftDeleteModel,
    TimestampedModel,
    UUIDModel,
)
from tests.testapp.models import Author, Entry, Ledger, Posting

pytestmark = pytest.mark.django_db


def test_base_model_is_the_sum_of_the_four_with_its_fields_in_the_order_they_always_had():
    """BaseModel subclasses each part, and a BaseModel's own columns are id, created_at, updated_at, is_deleted,
    deleted_at, as before the split (so no migration changes)."""
    for part in (UUIDModel, TimestampedModel, ChangeTrackingModel, SoftDeleteModel):
        assert issubclass(BaseModel, part)
    names = [f.name for f in Author._meta.concrete_fields]
    assert names[:5] == ["id", "created_at", "updated_at", "is_deleted", "deleted_at"]


def test_soft_delete_alone_keeps_an_integer_keyed_row_and_cascades_to_its_children():
    """A SoftDeleteModel with an integer key and no timestamps: delete hides the row and its children, keeps every
    row, and restore brings back exactly them."""
    ledger = Ledger.objects.create(name="l")
    entries = [Entry.objects.create(ledger=ledger, amount=n) for n in range(3)]
    assert isinstance(Ledger._meta.pk, BigAutoField)
    assert ledger.delete() == (4, {"testapp.Ledger": 1, "testapp.Entry": 3})
    assert not Ledger.objects.exists() and not Entry.objects.exists()
    assert Ledger.all_objects.count() == 1 and Entry.all_objects.count() == 3
    ledger.refresh_from_db()
    assert ledger.restore().rows == 4
    assert set(Entry.objects.values_list("pk", flat=True)) == {e.pk for e in entries}


def test_a_cascade_stamps_updated_at_only_on_the_models_that_have_one():
    """Deleting a Ledger (no timestamps) soft-deletes its BaseModel Postings, stamping their updated_at."""
    ledger = Ledger.objects.create(name="l")
    posting = Posting.objects.create(ledger=ledger)
    ledger.delete()
    posting.refresh_from_db()
    assert posting.is_deleted and posting.updated_at == posting.deleted_at


def test_a_save_racing_a_deletion_raises_row_deleted_without_change_tracking():
    """A stale SoftDeleteModel instance saved after another deleted its row: RowDeleted, nothing written."""
    ledger = Ledger.objects.create(name="before")
    stale = Ledger.objects.get(pk=ledger.pk)
    ledger.delete()
    stale.name = "after"
    with pytest.raises(RowDeleted), transaction.atomic():
        stale.save()
    assert Ledger.all_objects.get(pk=ledger.pk).name == "before"


def test_a_save_without_change_tracking_writes_every_field_as_django_does():
    """Without ChangeTrackingModel a save writes the whole row: a change made by another is overwritten."""
    ledger = Ledger.objects.create(name="a")
    other = Ledger.objects.get(pk=ledger.pk)
    Ledger.objects.filter(pk=ledger.pk).update(name="changed elsewhere")
    other.save()
    assert Ledger.objects.get(pk=ledger.pk).name == "a"


def test_queryset_soft_delete_names_its_result_and_its_stamp():
    """queryset.soft_delete() is a Deletion: .result (rows, per_model) and .deleted_at, and it still unpacks."""
    Ledger.objects.create(name="x")
    deletion = Ledger.objects.all().soft_delete()
    assert isinstance(deletion, Deletion) and isinstance(deletion.result, DeleteResult)
    assert deletion.result.rows == 1 and deletion.result.per_model == {"testapp.Ledger": 1}
    (rows, _), stamp = deletion
    assert rows == 1 and stamp == deletion.deleted_at == Ledger.all_objects.get().deleted_at
    assert Ledger.objects.none().soft_delete() == ((0, {}), None)
