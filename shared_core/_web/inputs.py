"""Input types that refuse, with a 400 naming the field, what a database cannot store or a client should not send."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from django.http import HttpRequest
from ninja import Header
from ninja.parser import Parser
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from shared_core._base.wire import IDEMPOTENCY_KEY_HEADER, MAX_IDEMPOTENCY_KEY

__all__ = ["IdempotencyKey", "InvalidJSON", "JSONParser", "Timestamp", "text"]

#: A string with no NUL character: both databases refuse NUL, and only at write time.
_NO_NUL: Final = r"^[^\x00]*$"
#: The same with one character that is not a space, tab or line break. (Not \S: Python's and the Rust
#: regex engine's ideas of Unicode whitespace differ, and the document must mean what validation does.)
_NOT_BLANK: Final = r"^[^\x00]*[^\x00\t\n\r ][^\x00]*$"


def text(max_length: int, *, blank: bool = False) -> Any:
    """A string type of at most ``max_length`` characters that every database can store.

    ``blank=False``: it must hold a character other than a space, tab or
    line break. A NUL character is a 400 naming the field, never a 500 at
    write time, and the document states it as the ``pattern``.
    """
    return Annotated[str, StringConstraints(max_length=max_length, pattern=_NO_NUL if blank else _NOT_BLANK)]


def _representable(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of representable times") from None


#: An ISO 8601 time with a zone, in UTC once parsed; one whose UTC time has no year 1-9999 is a 400.
Timestamp = Annotated[AwareDatetime, AfterValidator(_representable)]

#: The ``Idempotency-Key`` header: 1-128 printable ASCII characters.
IdempotencyKey = Annotated[
    str | None,
    Header(alias=IDEMPOTENCY_KEY_HEADER, min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=r"^[ -~]+$"),
]


class InvalidJSON(ValueError):
    pass


class JSONParser(Parser):
    """ninja's parser, but any body that is not a JSON object (too deep to parse, say) is ``invalid_json``."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)
        except RecursionError:
            raise InvalidJSON("the body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidJSON("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidJSON("the body must be a JSON object")
        return data
