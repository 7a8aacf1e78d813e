"""System checks that catch misuse of a soft-deleting model (BaseModel, SoftDeleteModel) before it loses rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core import checks
from django.db.models import UniqueConstraint

from shared_core.models import IdempotentModel, SoftDeleteManager, SoftDeleteModel

__all__ = ["check_soft_delete_models"]


def check_soft_delete_models(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report SoftDeleteModel subclasses (every BaseModel) whose managers or unique fields defeat soft delete.

    - ``shared_core.E001``: the default manager is not a filtering ``SoftDeleteManager``
      (for example ``objects = models.Manager()``), so deleted rows leak into
      queries and reverse relations, and ``queryset.delete()`` is a hard delete.
    - ``shared_core.E002``: a filtering ``SoftDeleteManager`` is marked
      ``use_in_migrations``, so data migrations would not see deleted rows.
    - ``shared_core.W001``: a uniqueness rule that also counts deleted rows, so a
      value can never be reused: a ``unique=True`` field, an unconditional
      ``UniqueConstraint`` or ``unique_together``. ``live_unique()`` counts live
      rows only.
    - ``shared_core.E003``: an ``IdempotentModel`` without
      ``live_unique("idempotency_caller", "idempotency_key")``, or with a
      uniqueness over ``idempotency_key`` that leaves the caller out: two
      callers' requests with one key would fail instead of storing a row each.
    """
    configs: Iterable[AppConfig] = app_configs if app_configs is not None else apps.get_app_configs()
    errors: list[checks.CheckMessage] = []
    for config in configs:
        for model in config.get_models():
            if issubclass(model, SoftDeleteModel):
                errors.extend(_check_model(model))
    return errors


def _check_model(model: type[SoftDeleteModel]) -> list[checks.CheckMessage]:
    errors = [*_check_managers(model), *_check_uniqueness(model)]
    if issubclass(model, IdempotentModel):
        errors.extend(_check_idempotent(model))
    return errors


def _check_managers(model: type[SoftDeleteModel]) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    default = model._default_manager
    if not isinstance(default, SoftDeleteManager) or default.include_deleted:
        errors.append(
            checks.Error(
                f"{model._meta.label}'s default manager {default.name!r} does not hide soft-deleted rows.",
                hint="Keep `objects = SoftDeleteManager()` first; subclass SoftDeleteManager for custom managers.",
                obj=model,
                id="shared_core.E001",
            )
        )
    for manager in model._meta.managers:
        if isinstance(manager, SoftDeleteManager) and not manager.include_deleted and manager.use_in_migrations:
            errors.append(
                checks.Error(
                    f"{model._meta.label}.{manager.name} filters out deleted rows and is used in migrations.",
                    hint="Set use_in_migrations = False so data migrations see every row.",
                    obj=model,
                    id="shared_core.E002",
                )
            )
    return errors


def _check_uniqueness(model: type[SoftDeleteModel]) -> list[checks.CheckMessage]:
    label = model._meta.label
    rules: list[tuple[str, tuple[str, ...]]] = [
        (f"{label}.{field.name} is unique across deleted rows too.", (field.name,))
        for field in model._meta.local_fields
        if field.unique and not field.primary_key
    ]
    rules += [
        (f"{label}'s UniqueConstraint {c.name!r} is unconditional, so it counts deleted rows too.", tuple(c.fields))
        for c in model._meta.constraints
        if isinstance(c, UniqueConstraint) and c.condition is None
    ]
    rules += [
        (f"{label}'s unique_together {tuple(fields)!r} counts deleted rows too.", tuple(fields))
        for fields in model._meta.unique_together
    ]
    return [
        checks.Warning(
            message,
            hint=f"Use Meta.constraints = [live_unique({_listed(fields)})] so the values can be reused.",
            obj=model,
            id="shared_core.W001",
        )
        for message, fields in rules
    ]


def _listed(fields: tuple[str, ...]) -> str:
    return ", ".join(f'"{f}"' for f in fields) or "..."


def _check_idempotent(model: type[SoftDeleteModel]) -> list[checks.CheckMessage]:
    scoped = {"idempotency_caller", "idempotency_key"}
    constraints = [c for c in model._meta.constraints if isinstance(c, UniqueConstraint)]
    if any(set(c.fields) == scoped and c.condition is not None for c in constraints) and not any(
        "idempotency_key" in c.fields and "idempotency_caller" not in c.fields for c in constraints
    ):
        return []
    return [
        checks.Error(
            f"{model._meta.label}'s idempotency keys are not unique per caller among live rows.",
            hint='Use Meta.constraints = [live_unique("idempotency_caller", "idempotency_key")] and no other'
            " uniqueness over idempotency_key.",
            obj=model,
            id="shared_core.E003",
        )
    ]
