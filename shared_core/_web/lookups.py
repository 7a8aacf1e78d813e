"""Finding rows for a view: the soft-delete list filter, a row or 404, a restore or 409, another service's row."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from ninja import Schema

from shared_core._web.errors import APIError
from shared_core.clients import HTTPClient, HTTPStatusError
from shared_core.models import SoftDeleteModel

__all__ = ["ListFilters", "fetch_reference", "get_or_404", "restore_or_409", "visible"]

_M = TypeVar("_M", bound=Model)
_S = TypeVar("_S", bound=SoftDeleteModel)


class ListFilters(Schema):
    """``?include_deleted=true`` lists soft-deleted rows too.

    A service's subclass adds exact-match filters: each further field that
    the query sets (``ticket_id: UUID | None = None``) filters the rows by the
    model field of that name.
    """

    include_deleted: bool = False


def visible(model: type[_S], filters: ListFilters) -> QuerySet[_S]:
    """``model``'s live rows (every row when ``filters.include_deleted``), narrowed by the other filters set."""
    manager = model.all_objects if filters.include_deleted else model.objects
    return manager.filter(**filters.model_dump(exclude={"include_deleted"}, exclude_none=True))


def get_or_404(queryset: QuerySet[_M], pk: uuid.UUID, what: str) -> _M:
    """The row with primary key ``pk``, or a 404 naming ``what``."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise APIError(404, "not_found", f"no {what} with id {pk}")
    return obj


def restore_or_409(obj: SoftDeleteModel, what: str) -> None:
    """``obj.restore()``; a clash with a live row (a unique value taken meanwhile) is a 409, not a 500."""
    try:
        with transaction.atomic():
            obj.restore()
    except IntegrityError:
        raise APIError(409, "conflict", f"a live {what} already holds a value this one needs") from None


def fetch_reference(client: HTTPClient, path: str, field: str, detail: str) -> Any:
    """GET ``path`` from another service: the row that a body's ``field`` refers to (other failures propagate).

    Its 404 is our 404 naming ``field`` (as Stripe's "No such customer"): the request is well formed,
    and what it refers to does not exist.
    """
    try:
        return client.get_json(path)
    except HTTPStatusError as exc:
        if exc.status_code == 404:
            raise APIError(404, "not_found", detail, field=field) from None
        raise
