"""Keyset pagination over ``(created_at, id)``: every row reachable at the same cost per page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import PaginationBase

__all__ = ["CURSOR_PATTERN", "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "KeysetPagination", "cursor_after"]

#: Rows a list returns unless ``?limit=`` asks for another number.
DEFAULT_PAGE_SIZE: Final = 100
#: The most rows ``?limit=`` may ask for.
MAX_PAGE_SIZE: Final = 1000


#: A page cursor: the last row's ``created_at`` in microseconds since 1970 (UTC), negative before it, ``_``,
#: and its id in hex. Eighteen digits hold every datetime from year 1 to 9999.
CURSOR_PATTERN: Final = r"^-?[0-9]{1,18}_[0-9a-f]{32}$"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: The microseconds since 1970 of the first and last datetime (years 1 and 9999).
_EARLIEST: Final = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_LATEST: Final = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    """``micros`` since 1970 as a datetime, held to the range a datetime has (a cursor past it is still a position)."""
    return _EPOCH + min(max(micros, _EARLIEST), _LATEST) * _MICROSECOND


class KeysetPagination(PaginationBase):
    """Newest first, ``?limit=`` rows a page, and ``next``: the cursor of the page after, or ``null``.

    The cursor holds the page's last row's ``(created_at, id)``; the next
    page is the rows strictly before it in that order: an index range scan
    wherever it starts, so a page a million rows deep costs what the first
    does, and rows inserted meanwhile never shift a page. Every string that
    matches ``CURSOR_PATTERN`` is a position, so no cursor is ever refused
    for pointing at nothing.
    """

    class Input(Schema):
        limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
        cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="`next` of the page before")

    class Output(Schema):
        results: list[Any]
        next: str | None

    items_attribute = "results"

    def paginate_queryset(self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any) -> Any:
        if pagination.cursor is not None:
            micros, _, key = pagination.cursor.partition("_")
            created_at, pk = _moment(int(micros)), uuid.UUID(hex=key)
            queryset = queryset.filter(
                Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk), created_at__lte=created_at
            )
        rows = list(queryset.order_by("-created_at", "-pk")[: pagination.limit + 1])
        page, more = rows[: pagination.limit], len(rows) > pagination.limit
        return {"results": page, "next": cursor_after(page[-1]) if more else None}


def cursor_after(row: Any) -> str:
    """The cursor of the page that starts after ``row`` (a ``BaseModel`` row) in ``KeysetPagination``."""
    return f"{(row.created_at - _EPOCH) // _MICROSECOND}_{row.pk.hex}"
