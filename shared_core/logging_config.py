"""One logging setup for every service: ``LOGGING = get_logging_config("ticket-service", debug=DEBUG)``.

Settings modules call it before Django's settings exist, so it never reads
``django.conf.settings``; it takes arguments, falling back to the
environment (``SERVICE_NAME``, ``LOG_LEVEL``, ``LOG_FORMAT``).

Text lines (``LOG_FORMAT=text``, the default) all match ``TEXT_LINE_PATTERN``::

    2026-11-26T07:43:49.123Z INFO service=ticket-service request_id=5f0c… logger=django.request message…

JSON lines (``LOG_FORMAT=json``) are objects with the keys ``timestamp``,
``level``, ``service``, ``logger``, ``request_id`` and ``message`` (plus
``exception`` when there is one). In both, a bearer token that reaches a log
record is replaced by ``Bearer [redacted]``, and a record carries the request
id of the request in progress (``-`` outside one).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Final

from shared_core.context import get_request_id

__all__ = [
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_SERVICE_NAME",
    "LOG_FORMATS",
    "TEXT_LINE_PATTERN",
    "ContextFilter",
    "TextFormatter",
    "get_logging_config",
]

#: Used when neither the argument nor ``SERVICE_NAME`` names the service.
DEFAULT_SERVICE_NAME: Final = "service"
#: Used when neither the argument nor ``LOG_FORMAT`` names a format.
DEFAULT_LOG_FORMAT: Final = "text"
#: The formats ``get_logging_config`` knows.
LOG_FORMATS: Final = ("text", "json")
#: Every text line matches this pattern; named groups are the JSON keys.
TEXT_LINE_PATTERN: Final = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+) service=(?P<service>\S+)"
    r" request_id=(?P<request_id>\S+) logger=(?P<logger>\S+) (?P<message>.*)$"
)

_TEXT_FORMAT = (
    "%(asctime)s.%(msecs)03dZ %(levelname)s service=%(service)s request_id=%(request_id)s logger=%(name)s %(message)s"
)
_JSON_FORMAT = "%(levelname)s %(service)s %(name)s %(request_id)s %(message)s"
_BEARER = re.compile(r"(?i)\bBearer\s+[^\s'\",]+")


class ContextFilter(logging.Filter):
    """Adds ``service`` and ``request_id`` to every record and redacts bearer tokens."""

    def __init__(self, service: str = DEFAULT_SERVICE_NAME) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = get_request_id() or _access_log_request_id(record) or "-"
        message = record.getMessage()
        # Store the formatted text, so the formatter does not format the message a second time.
        record.msg, record.args = (_BEARER.sub("Bearer [redacted]", message) if "earer" in message else message), None
        return True


def _access_log_request_id(record: logging.LogRecord) -> str | None:
    """gunicorn writes its access line after the request's context is gone; its atoms still hold the id."""
    atoms = record.args
    return atoms.get("{x-request-id}o") if isinstance(atoms, dict) else None


class TextFormatter(logging.Formatter):
    """UTC ISO-8601 times, and every record on one line (newlines in messages and tracebacks escaped)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


def get_logging_config(
    service_name: str | None = None,
    *,
    debug: bool = False,
    level: str | None = None,
    log_format: str | None = None,
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for one service.

    ``service_name``: ``None`` takes ``SERVICE_NAME``, else ``DEFAULT_SERVICE_NAME``.
    ``level``: ``None`` takes ``LOG_LEVEL``, else ``DEBUG`` when ``debug`` is on, else ``INFO``.
    ``log_format``: ``None`` takes ``LOG_FORMAT``, else ``DEFAULT_LOG_FORMAT``.
    Raises ``ValueError`` naming an unknown level or format.
    """
    service = service_name or os.environ.get("SERVICE_NAME") or DEFAULT_SERVICE_NAME
    level = (level or os.environ.get("LOG_LEVEL") or ("DEBUG" if debug else "INFO")).upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format = (log_format or os.environ.get("LOG_FORMAT") or DEFAULT_LOG_FORMAT).lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {', '.join(LOG_FORMATS)}")
    formatters = {
        "text": {"()": TextFormatter, "format": _TEXT_FORMAT, "datefmt": "%Y-%m-%dT%H:%M:%S"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": _JSON_FORMAT,
            "rename_fields": {"levelname": "level", "name": "logger", "exc_info": "exception"},
            "timestamp": "timestamp",
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "service": service}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django and gunicorn install handlers of their own; route them all through the one handler.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "gunicorn.error": {"handlers": [], "level": level, "propagate": True},
            "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": True},
        },
    }
