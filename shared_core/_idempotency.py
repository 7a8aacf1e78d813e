"""Creation that happens once per ``Idempotency-Key``: a retried POST is never stored twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction
from django.db.models import Model
from django.http import HttpResponse
from ninja.responses import Status
from pydantic import BaseModel

from shared_core._errors import APIError
from shared_core._inputs import MAX_IDEMPOTENCY_KEY
from shared_core.clients import IDEMPOTENCY_KEY_HEADER

__all__ = ["IdempotentModel", "create_once", "fingerprint"]

_M = TypeVar("_M", bound=Model)


class IdempotentModel(models.Model):
    """The two fields ``create_once`` needs: the ``Idempotency-Key`` a row was created under, and its body's hash.

    Mix it into a ``BaseModel`` subclass (``class Ticket(IdempotentModel, BaseModel)``) and add
    ``live_unique("idempotency_key")`` to its constraints, so a key names one live row. Rows created
    without a key leave both fields null.
    """

    # NULL, not "", for "no key": NULLs never collide in the live_unique constraint.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=MAX_IDEMPOTENCY_KEY, null=True, blank=True, editable=False
    )
    # The sha256 of the first request's body: the same key with another body is refused.
    idempotency_fingerprint = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        abstract = True


def fingerprint(payload: BaseModel) -> str:
    """The sha256 of ``payload`` as canonical JSON: equal for equal bodies, whatever their key order."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_once(
    response: HttpResponse,
    model: type[_M],
    key: str | None,
    payload: BaseModel,
    create: Callable[[str], _M],
    *,
    check: Callable[[], None] | None = None,
    after_create: Callable[[_M], None] | None = None,
) -> Status[_M]:
    """``Status(201, row)`` from ``create(fingerprint)``, or ``Status(200, row)`` stored under ``key`` before.

    ``model`` has ``idempotency_key`` (unique among live rows) and
    ``idempotency_fingerprint`` fields, which ``create`` fills with ``key``
    and the fingerprint it is given. A replay answers the first request's row
    whatever happened since (its references deleted, a neighbour down) and
    marks ``response`` ``Idempotent-Replayed: true``; the same key with a
    different body is a 422, and a replay of a row deleted since is a 409.
    ``check`` runs only for a new row, before it is
    created and outside any transaction (it may call another service). Two
    racing requests with one key store one row: the loser replays the
    winner's. ``after_create`` runs once, after the new row is committed.
    """
    digest = fingerprint(payload)
    earlier = _replay(response, model, key, digest)
    if earlier is not None:
        return Status(200, earlier)
    if check is not None:
        check()
    try:
        with transaction.atomic():
            obj = create(digest)
    except IntegrityError:
        earlier = _replay(response, model, key, digest)
        if earlier is None:
            raise
        return Status(200, earlier)
    if after_create is not None:
        after_create(obj)
    return Status(201, obj)


def _replay(response: HttpResponse, model: type[_M], key: str | None, digest: str) -> _M | None:
    if key is None:
        return None
    earlier = model._base_manager.filter(idempotency_key=key).order_by("created_at").first()
    if earlier is None:
        return None
    stored = getattr(earlier, "idempotency_fingerprint", None)
    if stored and stored != digest:
        raise APIError(422, "idempotency_key_reused", f"{IDEMPOTENCY_KEY_HEADER} was first used with a different body")
    if getattr(earlier, "is_deleted", False):
        # Replaying it would tell the client a row exists that a GET then says does not.
        detail = f"the row this {IDEMPOTENCY_KEY_HEADER} created, {earlier.pk}, has since been deleted"
        raise APIError(409, "created_then_deleted", detail)
    response["Idempotent-Replayed"] = "true"
    return earlier
