"""BaseModel: UUID keys, timestamps and a soft delete that never loses a row, and the models it is the sum of.

``BaseModel`` is ``UUIDModel`` (the key) + ``TimestampedModel`` (``created_at``, ``updated_at``) +
``ChangeTrackingModel`` (a save writes what changed) + ``SoftDeleteModel`` (the soft delete and the
live-only write). A model takes the ones it needs: soft delete on an integer-keyed table is
``class Legacy(SoftDeleteModel)``. Where a part is missing, the contract below loses only what that part
gives: without ``TimestampedModel`` nothing is stamped, and without ``ChangeTrackingModel`` a save writes
every field, as Django's does.

Contract:

- ``Model.objects`` sees live rows only; ``Model.all_objects`` sees every row.
  Django's base manager stays unfiltered, so a forward foreign key to a
  soft-deleted row still resolves, while reverse relations and
  ``prefetch_related`` (built on ``objects``) hide deleted rows.
- ``instance.delete()`` and ``queryset.delete()`` are soft: bulk UPDATEs, never
  a SQL ``DELETE``. Only ``hard_delete()`` removes rows.
- Soft delete cascades to ``on_delete=CASCADE`` children that soft-delete too (a SoftDeleteManager)
  (soft, never nulling a key); other relations are left alone because the
  parent row still exists. Every row a deletion touches gets the same
  ``deleted_at`` stamp, which is how ``restore()`` brings back exactly that
  deletion's rows and not children deleted on their own earlier.
- Every UPDATE keeps its "still live" (or "still deleted by this stamp")
  condition, so two concurrent deletions of one row never both change it: the
  one that commits second changes nothing, and each row keeps the stamp of the
  deletion that took it.
- Cost: one UPDATE per model in the cascade (per relation and depth), whatever
  the number of rows; a restore adds one per model, which clears the stamp
  last, so its rows stay marked while receivers run, whatever they write.
  With ``post_soft_delete`` / ``post_restore`` receivers connected, add one
  SELECT per 500 rows of each model that has
  receivers; rows are found by the deletion's stamp, never by a key list.
- ``save()`` of a row loaded from the database writes only the fields that
  changed since it was loaded (plus ``updated_at``), in an UPDATE that also
  requires the row to be live still. Two requests changing different fields
  of one row both keep their change, and a save racing a soft delete never
  brings the row back: it raises ``RowDeleted`` (an ``ObjectDoesNotExist``,
  which the API answers 404) instead. ``update_fields=[...]`` narrows it as
  in Django; a row made in memory (never loaded) is saved as Django does.
- ``queryset.update()`` advances ``updated_at`` unless you set it yourself.
- ``live_unique("email")`` declares uniqueness among live rows only.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from django.db import models, router
from django.utils import timezone

from shared_core._base.wire import MAX_CALLER_NAME, MAX_IDEMPOTENCY_KEY
from shared_core._data.changes import ChangeTrackingModel
from shared_core._data.softdelete import (
    DeleteResult,
    Deletion,
    RowDeleted,
    SoftDeleteManager,
    SoftDeleteQuerySet,
    restore,
    soft_delete,
    stamps_updates as _stamps_updates,
)

__all__ = [
    "BaseModel",
    "ChangeTrackingModel",
    "DeleteResult",
    "Deletion",
    "IdempotentModel",
    "RowDeleted",
    "SoftDeleteManager",
    "SoftDeleteModel",
    "SoftDeleteQuerySet",
    "TimestampedModel",
    "UUIDModel",
    "live_unique",
]


class UUIDModel(models.Model):
    """A UUID primary key, ``id``, made in Python (``uuid4``): a row has its key before it is saved."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True


class TimestampedModel(models.Model):
    """``created_at`` (set once, indexed) and ``updated_at`` (every save, and every bulk update of the queryset)."""

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class SoftDeleteModel(models.Model):
    """A soft delete that never loses a row, and writes that happen only while the row is live.

    ``objects`` sees live rows, ``all_objects`` every row; ``delete()`` marks the row and its
    ``on_delete=CASCADE`` children that soft-delete too, and ``restore()`` undoes exactly that deletion
    (the module's docstring has the whole contract). An UPDATE from ``save()`` also requires the row to
    be live still, so a save racing a deletion raises ``RowDeleted`` and writes nothing. Add it to an
    existing table with any key: with ``TimestampedModel``, deletions and restores stamp ``updated_at``
    too; with ``ChangeTrackingModel``, a reloaded instance keeps the fields set and not yet saved.
    """

    is_deleted = models.BooleanField(default=False, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SoftDeleteManager["SoftDeleteModel"]()
    all_objects = SoftDeleteManager["SoftDeleteModel"](include_deleted=True)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Django's, but an UPDATE of a row soft-deleted meanwhile raises ``RowDeleted`` and writes nothing."""
        stamps = {
            f.attname: self.__dict__.get(f.attname) for f in self._meta.concrete_fields if getattr(f, "auto_now", False)
        }
        try:
            super().save(*args, **kwargs)
        except RowDeleted:
            self.__dict__.update(stamps)  # nothing was written: updated_at is not a change of this instance's
            raise

    def _do_update(self, base_qs: Any, using: Any, pk_val: Any, values: Any, *args: Any, **kwargs: Any) -> bool:  # type: ignore[override]
        if self.is_deleted:
            return bool(super()._do_update(base_qs, using, pk_val, values, *args, **kwargs))
        if super()._do_update(base_qs.filter(is_deleted=False), using, pk_val, values, *args, **kwargs):
            return True
        if base_qs.filter(pk=pk_val, is_deleted=True).exists():
            raise RowDeleted(f"{self._meta.label} {pk_val} was deleted while it was being changed")
        return False

    def delete(self, using: str | None = None, keep_parents: bool = False) -> DeleteResult:
        """Soft delete (see ``soft_delete``); kept so Django and the admin stay soft."""
        return self.soft_delete(using=using)

    def soft_delete(self, using: str | None = None) -> DeleteResult:
        """Mark this row and its soft-deleting CASCADE children deleted; ``(0, {})`` if already deleted.

        When another request deleted it first, the instance then holds the row as stored (but for fields
        set and not saved yet).
        """
        if self.is_deleted:
            return DeleteResult(0, {})
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=False)
        result, stamp = soft_delete(type(self), roots, db)
        if result.rows:
            self.is_deleted, self.deleted_at = True, stamp
            written = ["is_deleted", "deleted_at"]
            if _stamps_updates(type(self)):
                self.updated_at = stamp
                written.append("updated_at")
            if isinstance(self, ChangeTrackingModel):
                self.forget_changes(*written)
        else:
            self._reload_unchanged(db)  # another request deleted it first
        return result

    def _reload_unchanged(self, db: str) -> None:
        """Hold the row as stored now, in every field but those set here and not yet saved."""
        changed = set(self.changed_fields() or ()) if isinstance(self, ChangeTrackingModel) else set()
        self.refresh_from_db(using=db, fields=[f.attname for f in self._meta.concrete_fields if f.name not in changed])

    def restore(self, using: str | None = None) -> DeleteResult:
        """Undo the deletion that took this row, with exactly the rows it cascaded to.

        Afterwards the instance holds the row as stored (but for fields set and not saved yet), also when
        another request restored it first (then ``(0, {})``): an API that answers the instance answers the
        row's state, never a stale copy.
        """
        if not self.is_deleted or self.deleted_at is None:
            return DeleteResult(0, {})
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=True, deleted_at=self.deleted_at)
        result = restore(type(self), roots, self.deleted_at, db)
        self._reload_unchanged(db)  # the row as it is now, whichever request restored it
        return result

    def hard_delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Physically delete this row with Django's usual cascade (the only real DELETE)."""
        return super().delete(using=using, keep_parents=keep_parents)


class BaseModel(ChangeTrackingModel, SoftDeleteModel, TimestampedModel, UUIDModel):
    """Abstract base of every service model: UUID key, timestamps, change tracking and soft delete.

    The sum of ``UUIDModel``, ``TimestampedModel``, ``ChangeTrackingModel`` and ``SoftDeleteModel``;
    a model that needs only some of them (soft delete on an integer-keyed table) uses those.
    """

    class Meta:
        abstract = True


#: The caller of a row created outside a request, or before keys were scoped: any caller's replay finds it.
UNSCOPED_CALLER: Final = ""


class IdempotentModel(models.Model):
    """The fields ``create_once`` needs: the ``Idempotency-Key`` a row was created under, its caller, its body's hash.

    Mix it into a ``BaseModel`` subclass (``class Ticket(IdempotentModel, BaseModel)``) and add
    ``live_unique("idempotency_caller", "idempotency_key")`` to its constraints, so one caller's key
    names one live row (the system check ``shared_core.E003`` says so if it is missing). Rows created
    without a key leave the key and the hash null.
    """

    # NULL, not "", for "no key": NULLs never collide in the live_unique constraint.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=MAX_IDEMPOTENCY_KEY, null=True, blank=True, editable=False
    )
    # "" (UNSCOPED_CALLER), not NULL, for "no caller": NULLs would never collide in the constraint.
    idempotency_caller = models.CharField(
        max_length=MAX_CALLER_NAME, blank=True, default=UNSCOPED_CALLER, editable=False
    )
    # The sha256 of the first request's body: the same key with another body is refused.
    idempotency_fingerprint = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        abstract = True


def live_unique(*fields: str, name: str | None = None) -> models.UniqueConstraint:
    """A UniqueConstraint over ``fields`` that only counts live rows.

    Put it in ``Meta.constraints``; a value can be reused once the row holding
    it is soft-deleted, and ``full_clean()`` reports two live duplicates as a
    ValidationError. The default name is ``<app>_<model>_<fields>_live_uniq``.
    """
    if not fields:
        raise ValueError("live_unique() needs at least one field name")
    return models.UniqueConstraint(
        fields=list(fields),
        condition=models.Q(is_deleted=False),
        name=name or "%(app_label)s_%(class)s_" + "_".join(fields) + "_live_uniq",
        violation_error_code="unique",
        violation_error_message=f"a live row with this {', '.join(fields)} already exists",
    )
