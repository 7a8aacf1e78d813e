"""Change tracking: a model whose ``save()`` writes only the fields that changed since the row was loaded."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

__all__ = ["ChangeTrackingModel"]

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


class ChangeTrackingModel(models.Model):
    """``save()`` of a row loaded from the database writes only the fields that changed since it was loaded.

    Fields with ``auto_now`` (``updated_at``) are written too. ``update_fields=[...]`` narrows the write as in
    Django, and a row made in memory (never loaded) is saved as Django does. Two requests that change
    different fields of one row both keep their change.
    """

    class Meta:
        abstract = True

    def save(self, *args: Any, update_fields: Any = None, **kwargs: Any) -> None:
        """Save the fields changed since loading (or ``update_fields``) and the ``auto_now`` ones.

        A row inserted here counts as loaded afterwards: its next save writes only what changes after this one.
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

    def forget_changes(self, *attnames: str) -> None:
        """Count ``attnames`` as loaded with their current values (a bulk UPDATE wrote them)."""
        loaded = self.__dict__.get("_loaded")
        if loaded is not None:
            loaded.update({name: _snapshot(getattr(self, name)) for name in attnames})
