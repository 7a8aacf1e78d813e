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
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

from django.core.exceptions import ObjectDoesNotExist
from django.db import models, router, transaction
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND
from django.dispatch import Signal
from django.utils import timezone

from shared_core.signals import post_restore, post_soft_delete

__all__ = [
    "DEFAULT_SIGNAL_CHUNK_SIZE",
    "BaseModel",
    "RowDeleted",
    "SoftDeleteManager",
    "SoftDeleteQuerySet",
    "live_unique",
]

_M = TypeVar("_M", bound="BaseModel")

#: What a delete or restore returns: rows changed in all, and per model label.
DeleteResult = tuple[int, dict[str, int]]

#: Rows loaded per SELECT when signals are sent for a deletion or restore.
DEFAULT_SIGNAL_CHUNK_SIZE = 500

#: Values compared by ``==`` to tell a changed field; anything else (a JSON dict or list, which can change in
#: place) is always written.
_IMMUTABLE = (str, int, float, bytes, bool, type(None), datetime, uuid.UUID)


class RowDeleted(ObjectDoesNotExist):
    """A ``save()`` found its row soft-deleted since it was loaded: nothing was written."""


class SoftDeleteQuerySet(models.QuerySet[_M]):
    """A queryset whose ``delete()`` is soft and whose ``update()`` stamps ``updated_at``."""

    def active(self) -> SoftDeleteQuerySet[_M]:
        """Live rows of this queryset."""
        return self.filter(is_deleted=False)

    def deleted(self) -> SoftDeleteQuerySet[_M]:
        """Soft-deleted rows of this queryset (drops the live-rows filter of ``objects``)."""
        return self.with_deleted().filter(is_deleted=True)

    def with_deleted(self) -> SoftDeleteQuerySet[_M]:
        """This queryset without the live-rows filter that ``Model.objects`` adds.

        Other filters, including those of a related manager, are kept. A
        queryset whose top-level filters are OR-ed cannot be widened safely
        and raises ``TypeError``; call ``with_deleted()`` before combining.
        """
        clone = self.all()
        where = clone.query.where
        kept = [child for child in where.children if not self._is_live_filter(child)]
        if where.connector == AND and not where.negated:
            where.children = kept
        if self._has_live_filter(where):
            raise TypeError("with_deleted() must be called before querysets are OR-ed together")
        return clone

    def _has_live_filter(self, node: object) -> bool:
        children = getattr(node, "children", None)
        if children is None:
            return self._is_live_filter(node)
        return any(self._has_live_filter(child) for child in children)

    def _is_live_filter(self, node: object) -> bool:
        # The model's own is_deleted (on a parent table under multi-table inheritance), never a related model's.
        return (
            isinstance(node, Exact)
            and getattr(node.lhs, "target", None) is self.model._meta.get_field("is_deleted")
            and node.rhs is False
        )

    def update(self, **kwargs: Any) -> int:
        """Update rows in bulk; ``updated_at`` is set to now unless given."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        """Like Django's, and also stamps and saves ``updated_at`` on every object."""
        objs = list(objs)
        now = timezone.now()
        for obj in objs:
            obj.updated_at = now
        fields = [*fields, "updated_at"] if "updated_at" not in fields else list(fields)
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def delete(self) -> DeleteResult:
        """Soft-delete the live rows here and their cascade; returns Django's (total, per model)."""
        result, _ = self.soft_delete()
        return result

    def soft_delete(self) -> tuple[DeleteResult, datetime | None]:
        """Like ``delete()``, also returning the deletion's ``deleted_at`` stamp (``None`` if nothing changed).

        Rows deleted together share the stamp, so ``filter(deleted_at=stamp).restore()`` undoes exactly this.
        """
        self._refuse_sliced("delete")
        result, stamp = _soft_delete(self.model, self.with_deleted().filter(is_deleted=False), self.db)
        return result, stamp if result[0] else None

    def restore(self) -> DeleteResult:
        """Restore the deleted rows here, each with exactly what its deletion cascaded to."""
        self._refuse_sliced("restore")
        roots = self.with_deleted().filter(is_deleted=True)
        total: Counter[str] = Counter()
        for stamp in roots.values_list("deleted_at", flat=True).order_by().distinct():
            total.update(_restore(self.model, roots.filter(deleted_at=stamp), stamp, self.db)[1])
        return sum(total.values()), dict(total)

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        """Physically delete these rows, with Django's usual cascade (the only real DELETE)."""
        return super().delete()

    def _refuse_sliced(self, what: str) -> None:
        if self.query.is_sliced:
            raise TypeError(f"Cannot use 'limit' or 'offset' with {what}().")


class SoftDeleteManager(models.Manager[_M]):
    """The manager of BaseModel.

    ``SoftDeleteManager()`` (the default, ``objects``) returns live rows only;
    ``SoftDeleteManager(include_deleted=True)`` (``all_objects``) returns every row.
    """

    _queryset_class = SoftDeleteQuerySet

    def __init__(self, *, include_deleted: bool = False) -> None:
        super().__init__()
        self.include_deleted = include_deleted

    def get_queryset(self) -> SoftDeleteQuerySet[_M]:
        """Live rows, or every row when the manager was made with ``include_deleted``."""
        queryset = cast(SoftDeleteQuerySet[_M], super().get_queryset())
        if self.include_deleted:
            return queryset
        lookup = self._live_lookup()
        if lookup is None:  # is_deleted is on a parent's table (multi-table inheritance): let Django join
            return queryset.filter(is_deleted=False)
        # The lookup filter(is_deleted=False) would make, resolved once per model: every Model.objects
        # access would otherwise pay ~30 us to resolve it again (bench/softdelete.py).
        queryset.query.get_initial_alias()
        queryset.query.where.add(lookup, AND)
        return queryset

    def _live_lookup(self) -> Exact | None:
        cached = self.__dict__.get("_live")
        if cached is None or cached[0] is not self.model:
            field = self.model._meta.get_field("is_deleted")
            local = field.model._meta.concrete_model is self.model._meta.concrete_model
            lookup = Exact(field.get_col(self.model._meta.db_table), False) if local else None  # type: ignore[union-attr]
            cached = self.__dict__["_live"] = (self.model, lookup)
        return cached[1]

    def active(self) -> SoftDeleteQuerySet[_M]:
        """Live rows."""
        return self.get_queryset().active()

    def deleted(self) -> SoftDeleteQuerySet[_M]:
        """Soft-deleted rows."""
        return self.get_queryset().deleted()

    def with_deleted(self) -> SoftDeleteQuerySet[_M]:
        """Every row, live or deleted (a related manager keeps its relation filter)."""
        return self.get_queryset().with_deleted()


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
        result, stamp = _soft_delete(type(self), roots, db)
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
        result = _restore(type(self), roots, self.deleted_at, db)
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


def _cascade_relations(model: type[models.Model]) -> Iterator[models.ForeignObjectRel]:
    """Reverse relations whose rows soft-delete along with ``model``'s rows."""
    for rel in model._meta.related_objects:
        related = rel.related_model
        if (
            (rel.one_to_many or rel.one_to_one)
            and rel.on_delete is models.CASCADE
            and isinstance(related, type)
            and issubclass(related, BaseModel)
        ):
            yield rel


def _update(queryset: models.QuerySet[Any], values: Mapping[str, Any]) -> int:
    """One UPDATE; ``queryset`` keeps its state filter, so rows another deletion changed first are skipped."""
    return models.QuerySet.update(queryset, **values)


def _propagate(
    model: type[models.Model],
    marked: Mapping[str, Any],
    select: Mapping[str, Any],
    values: Mapping[str, Any],
    using: str,
    counts: Counter[type[models.Model]],
) -> None:
    """Apply ``values`` to the ``select`` children of ``model``'s ``marked`` rows, level by level.

    Each step only touches rows still in the old state, so it ends on cyclic
    data too; statements grow with relations and depth, never with rows.
    """
    for rel in _cascade_relations(model):
        child: type[models.Model] = rel.related_model
        parents = model._base_manager.using(using).filter(**marked)
        children = child._base_manager.using(using).filter(**select, **{f"{rel.field.name}__in": parents})
        changed = _update(children, values)
        if changed:
            counts[child] += changed
            _propagate(child, marked, select, values, using, counts)


def _send(
    signal: Signal, counts: Counter[type[models.Model]], marked: Mapping[str, Any], using: str, stamp: datetime
) -> None:
    """Send ``signal`` once for every row this change marked, read in keyset chunks of ``DEFAULT_SIGNAL_CHUNK_SIZE``.

    The rows are found by the mark the change left (its stamp), not by a
    list of keys, so the statements stay bounded and rows that a concurrent
    change took first are never announced twice.
    """
    for model in counts:
        if not signal.has_listeners(model):
            continue
        rows = model._base_manager.using(using).filter(**marked).order_by("pk")
        chunk = list(rows[:DEFAULT_SIGNAL_CHUNK_SIZE])
        while chunk:
            for row in chunk:
                signal.send(sender=model, instance=row, using=using, deleted_at=stamp)
            full = len(chunk) == DEFAULT_SIGNAL_CHUNK_SIZE
            chunk = list(rows.filter(pk__gt=chunk[-1].pk)[:DEFAULT_SIGNAL_CHUNK_SIZE]) if full else []


def _result(counts: Counter[type[models.Model]]) -> DeleteResult:
    per_model = {model._meta.label: n for model, n in counts.items()}
    return sum(per_model.values()), per_model


def _soft_delete(model: type[models.Model], roots: models.QuerySet[Any], using: str) -> tuple[DeleteResult, datetime]:
    stamp = timezone.now()
    values = {"is_deleted": True, "deleted_at": stamp, "updated_at": stamp}
    marked = {"is_deleted": True, "deleted_at": stamp}
    counts: Counter[type[models.Model]] = Counter()
    with transaction.atomic(using=using, savepoint=False):
        changed = _update(roots, values)
        if changed:
            counts[model] += changed
            _propagate(model, marked, {"is_deleted": False}, values, using, counts)
            _send(post_soft_delete, counts, marked, using, stamp)
    return _result(counts), stamp


def _restore(model: type[models.Model], roots: models.QuerySet[Any], stamp: datetime, using: str) -> DeleteResult:
    now = timezone.now()
    values = {"is_deleted": False, "deleted_at": None, "updated_at": now}
    marked = {"is_deleted": False, "updated_at": now}
    counts: Counter[type[models.Model]] = Counter()
    with transaction.atomic(using=using, savepoint=False):
        changed = _update(roots, values)
        if changed:
            counts[model] += changed
            _propagate(model, marked, {"is_deleted": True, "deleted_at": stamp}, values, using, counts)
            _send(post_restore, counts, marked, using, stamp)
    return _result(counts)
