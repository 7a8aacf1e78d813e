"""The error envelope as an OpenAPI schema, and the responses every operation documents."""

from __future__ import annotations

from typing import Final

from ninja import Schema

__all__ = ["ERROR_RESPONSES", "ERROR_STATUSES", "ErrorOut"]

#: Every status an operation may answer with the error envelope; each operation documents them all.
ERROR_STATUSES: Final = (400, 401, 403, 404, 409, 413, 422, 502, 503, 504, 507)


class ErrorOut(Schema):
    """The JSON body of every error: a stable code, a sentence for people, and the request id."""

    error: str
    detail: str
    request_id: str
    field: str | None = None


#: ``responses=`` for an operation: its success statuses plus ``ERROR_RESPONSES``.
ERROR_RESPONSES: Final[dict[int, type[ErrorOut]]] = dict.fromkeys(ERROR_STATUSES, ErrorOut)
