"""The soft delete's machinery behind ``shared_core.models``: the managers, and the cascade of one deletion."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models, transaction
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND
from django.dispatch import Signal
from django.utils import timezone

from shared_core.signals import post_restore, post_soft_delete

__all__ = [
    "DEFAULT_SIGNAL_CHUNK_SIZE",
    "DeleteResult",
    "Deletion",
    "RowDeleted",
    "SoftDeleteManager",
    "SoftDeleteQuerySet",
    "restore",
    "soft_delete",
    "stamps_updates",
]

_M = TypeVar("_M", bound=models.Model)


class DeleteResult(NamedTuple):
    """What a delete or restore returns, as Django's ``delete()`` does: rows changed in all, and per model label."""

    rows: int
    per_model: dict[str, int]


class Deletion(NamedTuple):
    """What ``queryset.soft_delete()`` returns: its ``DeleteResult``, and the stamp its rows share (``None``: no row).

    ``filter(deleted_at=deletion.deleted_at).restore()`` undoes exactly this deletion.
    """

    result: DeleteResult
    deleted_at: datetime | None


#: Rows loaded per SELECT when signals are sent for a deletion or restore.
DEFAULT_SIGNAL_CHUNK_SIZE = 500


class RowDeleted(ObjectDoesNotExist):
    """A ``save()`` found its row soft-deleted since it was loaded: nothing was written."""


def stamps_updates(model: type[models.Model]) -> bool:
    """Whether ``model`` has an ``updated_at`` that deletions, restores and bulk updates stamp."""
    try:
        model._meta.get_field("updated_at")
    except FieldDoesNotExist:
        return False
    return True


class SoftDeleteQuerySet(models.QuerySet[_M]):
    """A queryset whose ``delete()`` is soft and whose ``update()`` stamps ``updated_at`` (when the model has one)."""

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
        """Update rows in bulk; ``updated_at`` is set to now unless given (or the model has none)."""
        if stamps_updates(self.model):
            kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        """Like Django's, and also stamps and saves ``updated_at`` on every object (when the model has one)."""
        objs = list(objs)
        fields = list(fields)
        if stamps_updates(self.model):
            now = timezone.now()
            for obj in objs:
                obj.updated_at = now
            fields = [*fields, "updated_at"] if "updated_at" not in fields else fields
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def delete(self) -> DeleteResult:
        """Soft-delete the live rows here and their cascade; returns Django's (total, per model)."""
        result, _ = self.soft_delete()
        return result

    def soft_delete(self) -> Deletion:
        """Like ``delete()``, also naming the deletion's ``deleted_at`` stamp (``None`` if nothing changed).

        Rows deleted together share the stamp, so ``filter(deleted_at=stamp).restore()`` undoes exactly this.
        """
        self._refuse_sliced("delete")
        result, stamp = soft_delete(self.model, self.with_deleted().filter(is_deleted=False), self.db)
        return Deletion(result, stamp if result.rows else None)

    def restore(self) -> DeleteResult:
        """Restore the deleted rows here, each with exactly what its deletion cascaded to."""
        self._refuse_sliced("restore")
        roots = self.with_deleted().filter(is_deleted=True)
        total: Counter[str] = Counter()
        for stamp in roots.values_list("deleted_at", flat=True).order_by().distinct():
            total.update(restore(self.model, roots.filter(deleted_at=stamp), stamp, self.db)[1])
        return DeleteResult(sum(total.values()), dict(total))

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        """Physically delete these rows, with Django's usual cascade (the only real DELETE)."""
        return super().delete()

    def _refuse_sliced(self, what: str) -> None:
        if self.query.is_sliced:
            raise TypeError(f"Cannot use 'limit' or 'offset' with {what}().")


class SoftDeleteManager(models.Manager[_M]):
    """The manager of a soft-deleting model (``SoftDeleteModel``, ``BaseModel``).

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


def _cascade_relations(model: type[models.Model]) -> Iterator[models.ForeignObjectRel]:
    """Reverse relations whose rows soft-delete along with ``model``'s rows: their model has a SoftDeleteManager."""
    for rel in model._meta.related_objects:
        related = rel.related_model
        if (
            (rel.one_to_many or rel.one_to_one)
            and rel.on_delete is models.CASCADE
            and isinstance(related, type)
            and any(isinstance(manager, SoftDeleteManager) for manager in related._meta.managers)
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
    now: datetime,
    using: str,
    counts: Counter[type[models.Model]],
) -> None:
    """Apply ``values`` (and ``updated_at=now`` where a model has it) to the ``select`` children of ``model``'s
    ``marked`` rows, level by level.

    Each step only touches rows still in the old state, so it ends on cyclic
    data too; statements grow with relations and depth, never with rows.
    """
    for rel in _cascade_relations(model):
        child: type[models.Model] = rel.related_model
        parents = model._base_manager.using(using).filter(**marked)
        children = child._base_manager.using(using).filter(**select, **{f"{rel.field.name}__in": parents})
        changed = _update(children, _stamped(child, values, now))
        if changed:
            counts[child] += changed
            _propagate(child, marked, select, values, now, using, counts)


def _send(
    signal: Signal,
    counts: Counter[type[models.Model]],
    marked: Mapping[str, Any],
    using: str,
    stamp: datetime,
    shown: Mapping[str, Any] | None = None,
) -> None:
    """Send ``signal`` once for every row this change marked, read in keyset chunks of ``DEFAULT_SIGNAL_CHUNK_SIZE``.

    The rows are found by the mark the change left (its stamp), not by a
    list of keys, so the statements stay bounded and rows that a concurrent
    change took first are never announced twice. ``shown``: values each
    instance holds (as loaded) instead of the stored ones, when the mark is
    not the row's final state.
    """
    for model in counts:
        if not signal.has_listeners(model):
            continue
        rows = model._base_manager.using(using).filter(**marked).order_by("pk")
        chunk = list(rows[:DEFAULT_SIGNAL_CHUNK_SIZE])
        while chunk:
            for row in chunk:
                if shown:
                    row.__dict__.update(shown)
                    row.__dict__.get("_loaded", {}).update(shown)
                signal.send(sender=model, instance=row, using=using, deleted_at=stamp)
            full = len(chunk) == DEFAULT_SIGNAL_CHUNK_SIZE
            chunk = list(rows.filter(pk__gt=chunk[-1].pk)[:DEFAULT_SIGNAL_CHUNK_SIZE]) if full else []


def _result(counts: Counter[type[models.Model]]) -> DeleteResult:
    per_model = {model._meta.label: n for model, n in counts.items()}
    return DeleteResult(sum(per_model.values()), per_model)


def _stamped(model: type[models.Model], values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """``values``, and ``updated_at=now`` when ``model`` stamps updates."""
    return {**values, "updated_at": now} if stamps_updates(model) else dict(values)


def soft_delete(model: type[models.Model], roots: models.QuerySet[Any], using: str) -> tuple[DeleteResult, datetime]:
    stamp = timezone.now()
    marked = {"is_deleted": True, "deleted_at": stamp}
    counts: Counter[type[models.Model]] = Counter()
    with transaction.atomic(using=using, savepoint=False):
        changed = _update(roots, _stamped(model, marked, stamp))
        if changed:
            counts[model] += changed
            _propagate(model, marked, {"is_deleted": False}, marked, stamp, using, counts)
            _send(post_soft_delete, counts, marked, using, stamp)
    return _result(counts), stamp


def restore(model: type[models.Model], roots: models.QuerySet[Any], stamp: datetime, using: str) -> DeleteResult:
    # The restored rows keep the deletion's stamp until the last statement: live with that stamp marks them
    # while receivers run, whatever those write (a receiver's save() moves updated_at, never deleted_at).
    # Other transactions never see the mark; each model costs one more UPDATE.
    now = timezone.now()
    values = {"is_deleted": False}
    marked = {"is_deleted": False, "deleted_at": stamp}
    counts: Counter[type[models.Model]] = Counter()
    with transaction.atomic(using=using, savepoint=False):
        changed = _update(roots, _stamped(model, values, now))
        if changed:
            counts[model] += changed
            _propagate(model, marked, {"is_deleted": True, "deleted_at": stamp}, values, now, using, counts)
            _send(post_restore, counts, marked, using, stamp, shown={"deleted_at": None})
            for restored in counts:
                _update(restored._base_manager.using(using).filter(**marked), {"deleted_at": None})
    return _result(counts)
