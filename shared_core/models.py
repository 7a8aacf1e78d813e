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
  the number of rows; a restore adds one per model, which clears the stamp
  last, so its rows stay marked while receivers run, whatever they write.
  With ``post_soft_delete`` / ``post_restore`` receivers connected, add one
  SELECT per ``DEFAULT_SIGNAL_CHUNK_SIZE`` rows of each model that has
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

import copy
import json
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
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

#: Values of one type that ``==`` compares as the database would: a field holding the same value of the same
#: type as it was loaded with is unchanged, without asking the field.
_IMMUTABLE = (str, int, float, bytes, bool, type(None), datetime, date, time, timedelta, Decimal, uuid.UUID)
#: Values that can change in place (a JSON dict or list, an array): the loaded copy is a deep copy.
_MUTABLE = (dict, list, set, bytearray)


def _snapshot(value: Any) -> Any:
    """``value`` as it must be kept to be compared later: a deep copy when it can change in place."""
    return copy.deepcopy(value) if isinstance(value, _MUTABLE) else value


def _stored(field: models.Field[Any, Any], value: Any) -> Any:
    """What ``field`` would write for ``value``, in a form ``==`` compares exactly; a fresh object when unknown.

    ``get_prep_value`` is the field's own conversion to its database value (a ``FieldFile`` to its name, a
    date string to a date, ``1.0`` to ``1`` in an IntegerField), so two values compare equal exactly when
    the same value would be stored. JSON is compared as its text with the keys of objects sorted, since
    they are unordered (``1``, ``1.0`` and ``true`` differ there); bytes as bytes whatever buffer holds
    them; and the type is part of every other form (``1 == True`` in Python). A value the field cannot
    convert compares unequal to everything.
    """
    try:
        prepared = field.get_prep_value(value)
        if isinstance(field, models.JSONField):
            return json.dumps(prepared, cls=field.encoder, sort_keys=True)
    except (TypeError, ValueError, ValidationError):
        return object()
    if isinstance(prepared, (memoryview, bytearray)):
        prepared = bytes(prepared)
    return type(prepared), prepared


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
        stamped = [f for f in self._meta.concrete_fields if getattr(f, "auto_now", False)]
        if not args and not kwargs.get("force_insert"):
            fields = self.changed_fields() if update_fields is None else list(update_fields)
            if fields is not None:
                update_fields = [*dict.fromkeys([*fields, *(f.name for f in stamped)])]
        stamps = {f.attname: self.__dict__.get(f.attname) for f in stamped}
        try:
            super().save(*args, update_fields=update_fields, **kwargs)
        except RowDeleted:
            self.__dict__.update(stamps)  # nothing was written: updated_at is not a change of this instance's
            raise
        written = update_fields or [f.name for f in self._meta.concrete_fields]
        loaded = self.__dict__.setdefault("_loaded", {})
        for name in written:
            attname = self._meta.get_field(name).attname  # type: ignore[union-attr]
            if attname in self.__dict__:
                loaded[attname] = _snapshot(self.__dict__[attname])

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Any:  # type: ignore[override]
        """Django's, keeping the loaded values so that ``save()`` can tell which fields changed."""
        instance = super().from_db(db, field_names, values)
        instance.__dict__["_loaded"] = {name: _snapshot(value) for name, value in zip(field_names, values, strict=True)}
        return instance

    def refresh_from_db(self, using: str | None = None, fields: Any = None, from_queryset: Any = None) -> None:
        """Django's; the reloaded fields count as unchanged again."""
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        loaded = self.__dict__.get("_loaded")
        if loaded is not None:
            names = fields or [f.attname for f in self._meta.concrete_fields]
            loaded.update({name: _snapshot(getattr(self, name)) for name in names if name in self.__dict__})

    def changed_fields(self) -> list[str] | None:
        """Names of the fields whose database value changed since the row was loaded (or saved).

        ``None`` for a row that was not loaded. A field counts as changed when the value it would write now
        differs from the one it was loaded with, whatever its type: assigning an equal value (a date string
        equal to the stored date, ``Decimal("1.0")`` for ``1.00``) is not a change, and a JSON value or
        array changed in place is one.
        """
        loaded = self.__dict__.get("_loaded")
        if loaded is None or self._state.adding:
            return None
        changed = []
        for field in self._meta.concrete_fields:
            if field.primary_key or field.attname not in loaded or field.attname not in self.__dict__:
                continue
            before, now = loaded[field.attname], self.__dict__[field.attname]
            if type(before) is type(now) and isinstance(now, _IMMUTABLE) and before == now:
                continue
            if _stored(field, before) != _stored(field, now):
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
        """Mark this row and its BaseModel CASCADE children deleted; ``(0, {})`` if already deleted.

        When another request deleted it first, the instance then holds the row as stored (but for fields
        set and not saved yet).
        """
        if self.is_deleted:
            return 0, {}
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=False)
        result, stamp = soft_delete(type(self), roots, db)
        if result[0]:
            self.is_deleted, self.deleted_at, self.updated_at = True, stamp, stamp
            self._forget_changes("is_deleted", "deleted_at", "updated_at")
        else:
            self._reload_unchanged(db)  # another request deleted it first
        return result

    def _reload_unchanged(self, db: str) -> None:
        """Hold the row as stored now, in every field but those set here and not yet saved."""
        changed = set(self.changed_fields() or ())
        self.refresh_from_db(using=db, fields=[f.attname for f in self._meta.concrete_fields if f.name not in changed])

    def _forget_changes(self, *attnames: str) -> None:
        """Count ``attnames`` as loaded with their current values (a bulk UPDATE wrote them)."""
        loaded = self.__dict__.get("_loaded")
        if loaded is not None:
            loaded.update({name: _snapshot(getattr(self, name)) for name in attnames})

    def restore(self, using: str | None = None) -> DeleteResult:
        """Undo the deletion that took this row, with exactly the rows it cascaded to.

        Afterwards the instance holds the row as stored (but for fields set and not saved yet), also when
        another request restored it first (then ``(0, {})``): an API that answers the instance answers the
        row's state, never a stale copy.
        """
        if not self.is_deleted or self.deleted_at is None:
            return 0, {}
        db = using or router.db_for_write(type(self), instance=self)
        roots = type(self).all_objects.using(db).filter(pk=self.pk, is_deleted=True, deleted_at=self.deleted_at)
        result = restore(type(self), roots, self.deleted_at, db)
        self._reload_unchanged(db)  # the row as it is now, whichever request restored it
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
