"""A soft-delete model's list, get, delete and restore endpoints, written once for every service."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any, Final
from uuid import UUID

from django.db import models
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from shared_core._web.lookups import ListFilters, get_or_404, restore_or_409, visible
from shared_core._web.pagination import KeysetPagination
from shared_core._web.schemas import ERROR_RESPONSES
from shared_core.models import SoftDeleteModel

__all__ = ["ROUTES", "soft_delete_routes"]

#: The endpoints ``soft_delete_routes`` can add, in the order it adds them.
ROUTES: Final = ("list", "get", "delete", "restore")


def soft_delete_routes(
    router: Router,
    model: type[SoftDeleteModel],
    schema: type[Schema],
    *,
    name: str,
    path: str,
    module: str,
    filters: type[ListFilters] = ListFilters,
    routes: Collection[str] = ROUTES,
    conflict: str | None = None,
) -> None:
    """Add ``model``'s ``routes`` to ``router``, answered with ``schema`` and the error envelope.

    With ``name="user"`` and ``path="/users/"``:

    - ``list``: ``GET /users/``, the live rows (``?include_deleted=true``: every row) narrowed by
      ``filters``' other fields, in ``KeysetPagination``'s pages;
    - ``get``: ``GET /users/{user_id}/``, a live row, else a 404 naming the user (the key is a UUID, or
      an integer for a model with an integer key);
    - ``delete``: ``DELETE /users/{user_id}/``, a soft delete of a live row (204), else a 404;
    - ``restore``: ``POST /users/{user_id}/restore/``, the row restored with exactly what its deletion
      took (200 with the row); a live row that took a value it needs meanwhile is a 409 naming
      ``conflict`` (default: ``name``).

    ``module`` is the calling module's ``__name__``: the operations' ids are made from it, as for views
    written there (``user_service.api`` gives ``user_service_api_list_users``). An endpoint a service needs
    to differ (a delete that also tells a neighbour) is left out of ``routes`` and written as a view.
    ``ValueError`` names a route that is not one of ``ROUTES``.
    """
    unknown = set(routes) - set(ROUTES)
    if unknown:
        raise ValueError(f"soft_delete_routes: no route {sorted(unknown)}; choose from {list(ROUTES)}")
    plural = path.strip("/").rsplit("/", 1)[-1]
    key = f"{name}_id"
    key_type = UUID if isinstance(model._meta.pk, models.UUIDField) else int
    single = f"{path}{{{key}}}/"
    one = _one_row_views(model, name, key, key_type, conflict or name)
    views: dict[str, tuple[Callable[..., Any], Callable[..., Any], str, dict[int, Any]]] = {
        "list": (router.get, _lister(model, filters), path, {200: list[schema]}),  # type: ignore[valid-type]
        "get": (router.get, one["get"], single, {200: schema}),
        "delete": (router.delete, one["delete"], single, {204: None}),
        "restore": (router.post, one["restore"], f"{single}restore/", {200: schema}),
    }
    for route in ROUTES:
        if route in routes:
            method, view, url, responses = views[route]
            view_name = f"{route}_{plural if route == 'list' else name}"
            view.__name__ = view.__qualname__ = view_name
            view.__module__ = module
            operation_id = f"{module}_{view_name}".replace(".", "_")
            method(url, response={**responses, **ERROR_RESPONSES}, operation_id=operation_id)(view)


def _lister(model: type[SoftDeleteModel], schema: type[ListFilters]) -> Callable[..., Any]:
    def rows(request: HttpRequest, filters: ListFilters) -> Any:
        return visible(model, filters)

    view: Callable[..., Any] = paginate(KeysetPagination)(rows)
    view.__doc__ = f"Live {model._meta.verbose_name_plural}; ``?include_deleted=true`` lists deleted ones too."
    _typed(view, filters=Query[schema])  # type: ignore[misc,valid-type]
    return view


def _one_row_views(
    model: type[SoftDeleteModel], name: str, key: str, key_type: type, conflict: str
) -> dict[str, Callable[..., Any]]:
    """The ``get``, ``delete`` and ``restore`` views of one row of ``model``, found by the path's ``key``."""

    def get(pk: Any) -> Any:
        return get_or_404(model.objects.all(), pk, name)

    def delete(pk: Any) -> Status[None]:
        get(pk).soft_delete()
        return Status(204, None)

    def restore(pk: Any) -> Any:
        row = get_or_404(model.all_objects.all(), pk, name)
        restore_or_409(row, conflict)
        return row

    return {
        "get": _on_one(key, key_type, get, f"A live {name}; a deleted one is a 404 here (lists show it with "
                       "``?include_deleted=true``)."),
        "delete": _on_one(key, key_type, delete, f"Soft-delete a live {name}; a deleted or unknown one is a 404."),
        "restore": _on_one(key, key_type, restore, f"Restore a {name} with what its deletion took; a live row "
                           "holding a value it needs is a 409."),
    }  # fmt: skip


def _on_one(key: str, key_type: type, act: Callable[[Any], Any], doc: str) -> Callable[..., Any]:
    """A view of one row, described by ``doc``: ``act`` on the path's ``key``, typed ``key_type``."""

    def view(request: HttpRequest, **path: Any) -> Any:
        return act(path[key])

    view.__doc__ = doc
    _typed(view, **{key: key_type})
    return view


def _typed(view: Callable[..., Any], **parameters: Any) -> None:
    """Give ``view`` the signature django-ninja reads: ``request``, then ``parameters`` by name and type."""
    signature = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=HttpRequest)]
    signature += [
        inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
        for param, annotation in parameters.items()
    ]
    view.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
