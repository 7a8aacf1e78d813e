"""BaseModel: UUID keys, timestamps and a soft delete that never loses a row.

Contract:

- ``Model.objects`` sees live rows only; ``Model.all_objects`` sees every row.
  Django's base manager stays unfiltered, so a forward foreign key to a
  soft-deleted row still resolves, while reverse relations and
  ``prefetch_related`` (built on ``objects``) hide deleted rows.
- ``instance.delete()`` and ``queryset.delete()`` are soft: bulk UPDATEs, never
  a SQL ``DELETE``. Only ``hard_delete()`` removes rows.
- Soft delete cascades to ``on_delete=CASCADE`` children that are BaseModels
  (soft, never nulling a key); other relations are left alone because the
  parent row still exists. Every row a deletion touches gets the same
  ``deleted_at`` stamp, which is how ``restore()`` brings back exactly that
  deletion's rows and not children deleted on their own earlier.
- Every UPDATE keeps its "still live" (or "still deleted by this stamp")
  condition, so two concurrent deletions of one row never both change it: the
  one that commits second changes nothing, and each row keeps the stamp of the
  deletion that took it.
- Cost: one UPDATE per model in the cascade (per relation and depth), whatever
  the number of rows. With ``post_soft_delete`` / ``post_restore`` receivers
  connected, add one SELECT per ``DEFAULT_SIGNAL_CHUNK_SIZE`` rows of each model that
  has receivers; rows are found by the deletion's stamp, never by a key list.
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
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import models, router
from django.utils import timezone

from shared_core._idempotency import IdempotentModel
from shared_core._softdelete import DeleteResult, SoftDeleteManager, SoftDeleteQuerySet, restore, soft_delete

__all__ = [
    "BaseModel",
    "IdempotentModel",
    "RowDeleted",
    "SoftDeleteManager",
    "SoftDeleteQuerySet",
    "live_unique",
]

#: Values compared by ``==`` to tell a changed field; anything else (a JSON dict or list, which can change in
#: place) is always written.
_IMMUTABLE = (str, int, float, bytes, bool, type(None), datetime, uuid.UUID)


class RowDeleted(ObjectDoesNotExist):
    """A ``save()`` found its row soft-deleted since it was loaded: nothing was written."""


class BaseModel(models.Model):
    """Abstract base of every service model: UUID key, timestamps, soft delete."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    is_deleted = models.BooleanField(default=False, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SoftDeleteManager["BaseModel"]()
    all_objects = SoftDeleteManager["BaseModel"](include_deleted=True)

    class Meta:
        abstract = True

    def save(self, *args: Any, update_fields: Any = None, **kwargs: Any) -> None:
        """Save the fields changed since loading (or ``update_fields``) and ``updated_at``, only if still live.

        Raises ``RowDeleted`` when the row was soft-deleted meanwhile; then nothing is written. A row
        inserted here counts as loaded afterwards: its next save writes only what changes after this one.
        """
        if update_fields is not None and not update_fields:
            return  # Django's contract: an empty update_fields saves nothing
        if not args and not kwargs.get("force_insert"):
            fields = self.changed_fields() if update_fields is None else list(update_fields)
            if fields is not None:
                stamped = [f.name for f in self._meta.concrete_fields if getattr(f, "auto_now", False)]
                update_fields = [*dict.fromkeys([*fields, *stamped])]
        super().save(*args, update_fields=update_fields, **kwargs)
        written = update_fields or [f.name for f in self._meta.concrete_fields]
        loaded = self.__dict__.setdefault("_loaded", {})
        for name in written:
            attname = self._meta.get_field(name).attname  # type: ignore[union-attr]
            if attname in self.__dict__:
                loaded[attname] = self.__dict__[attname]

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Any:  # type: ignore[override]
        """Django's, keeping the loaded values so that ``save()`` can tell which fields changed."""
        instance = super().from_db(db, field_names, values)
        instance.__dict__["_loaded"] = dict(zip(field_names, values, strict=True))
        return instance

    def refresh_from_db(self, using: str | None = None, fields: Any = None, from_queryset: Any = None) -> None:
        """Django's; the reloaded fields count as unchanged again."""
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        loaded = self.__dict__.get("_loaded")
        if loaded is not None:
            names = fields or [f.attname for f in self._meta.concrete_fields]
            loaded.update({name: getattr(self, name) for name in names if name in self.__dict__})

    def changed_fields(self) -> list[str] | None:
        """Names of the fields set since the row was loaded; ``None`` for a row that was not loaded."""
        loaded = self.__dict__.get("_loaded")
        if loaded is None or self._state.adding:
            return None
        changed = []
        for field in self._meta.concrete_fields:
            if field.primary_key or field.attname not in loaded or field.attname not in self.__dict__:
                continue
            before, now = loaded[field.attname], self.__dict__[field.attname]
            if not isinstance(now, _IMMUTABLE) or type(before) is not type(now) or before != now:
                changed.append(field.name)
        return changed

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
        """Mark this row and its BaseModel CASCADE children deleted; ``(0, {})`` if already deleted."""
        if self.is_deleted:
            return 0, {}
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=False)
        result, stamp = soft_delete(type(self), roots, db)
        if result[0]:
            self.is_deleted, self.deleted_at, self.updated_at = True, stamp, stamp
            self._forget_changes("is_deleted", "deleted_at", "updated_at")
        return result

    def _forget_changes(self, *attnames: str) -> None:
        """Count ``attnames`` as loaded with their current values (a bulk UPDATE wrote them)."""
        loaded = self.__dict__.get("_loaded")
        if loaded is not None:
            loaded.update({name: getattr(self, name) for name in attnames})

    def restore(self, using: str | None = None) -> DeleteResult:
        """Undo the deletion that took this row, with exactly the rows it cascaded to."""
        if not self.is_deleted or self.deleted_at is None:
            return 0, {}
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=True, deleted_at=self.deleted_at)
        result = restore(type(self), roots, self.deleted_at, db)
        if result[0]:
            self.refresh_from_db(using=db, fields=["is_deleted", "deleted_at", "updated_at"])
        return result

    def hard_delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Physically delete this row with Django's usual cascade (the only real DELETE)."""
        return super().delete(using=using, keep_parents=keep_parents)


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
