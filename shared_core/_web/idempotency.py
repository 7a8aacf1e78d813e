"""Creation that happens once per caller and ``Idempotency-Key``: a retried POST is never stored twice.

Keys are scoped per caller, as Stripe scopes them per account: the caller is the name
``ServiceTokenMiddleware`` authenticated (``request.caller``), so two services that happen to pick
the same key create two rows, and neither is ever answered the other's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model, Q
from django.http import HttpResponse
from ninja.responses import Status
from pydantic import BaseModel

from shared_core._base.wire import IDEMPOTENCY_KEY_HEADER
from shared_core._web.errors import APIError
from shared_core._web.middleware import current_caller
from shared_core.models import UNSCOPED_CALLER

__all__ = ["create_once", "fingerprint"]

_M = TypeVar("_M", bound=Model)


def fingerprint(payload: BaseModel) -> str:
    """The sha256 of ``payload`` as canonical JSON: equal for equal bodies, whatever their key order."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_once(
    response: HttpResponse,
    model: type[_M],
    key: str | None,
    payload: BaseModel,
    create: Callable[[dict[str, str | None]], _M],
    *,
    check: Callable[[], None] | None = None,
    after_create: Callable[[_M], None] | None = None,
) -> Status[_M]:
    """``Status(201, row)`` from ``create(fields)``, or ``Status(200, row)`` this caller stored under ``key`` before.

    ``create`` makes the row with ``**fields``: its ``idempotency_key``
    (``key``), ``idempotency_caller`` (the request's authenticated caller,
    ``UNSCOPED_CALLER`` outside a request) and ``idempotency_fingerprint``
    (the body's hash); a row that does not hold them as given is refused with
    ``TypeError`` and not stored. ``model`` is an ``IdempotentModel`` with
    ``live_unique("idempotency_caller", "idempotency_key")``.

    A replay answers the first request's row whatever happened since (its
    references deleted, a neighbour down) and marks ``response``
    ``Idempotent-Replayed: true``; the same key with a different body is a
    422, and a replay of a row deleted since is a 409. Another caller's row
    under the same key is never answered: that caller's request creates its
    own. ``check`` runs only for a new row, before it is created and outside
    any transaction (it may call another service). Two racing requests with
    one key store one row: the loser replays the winner's. ``after_create``
    runs once, after the new row is committed.
    """
    caller = current_caller() or UNSCOPED_CALLER
    digest = fingerprint(payload)
    earlier = _replay(response, model, key, caller, digest)
    if earlier is not None:
        return Status(200, earlier)
    if check is not None:
        check()
    fields = {"idempotency_key": key, "idempotency_caller": caller, "idempotency_fingerprint": digest}
    try:
        with transaction.atomic():
            obj = create(dict(fields))
            _stored_as_given(obj, fields)
    except IntegrityError:
        earlier = _replay(response, model, key, caller, digest)
        if earlier is None:
            raise
        return Status(200, earlier)
    if after_create is not None:
        after_create(obj)
    return Status(201, obj)


def _stored_as_given(obj: Model, fields: dict[str, str | None]) -> None:
    for name, value in fields.items():
        if getattr(obj, name, None) != value:
            raise TypeError(
                f"create_once's create() must make the row with the fields it is given (**fields): "
                f"{type(obj).__name__}.{name} is not what create_once passed"
            )


def _replay(response: HttpResponse, model: type[_M], key: str | None, caller: str, digest: str) -> _M | None:
    if key is None:
        return None
    mine = Q(idempotency_caller=caller) | Q(idempotency_caller=UNSCOPED_CALLER)
    earlier = model._base_manager.filter(mine, idempotency_key=key).order_by("created_at").first()
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
