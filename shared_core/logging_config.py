"""One logging setup for every service: ``LOGGING = get_logging_config("ticket-service", debug=DEBUG)``.

Settings modules call it before Django's settings exist, so it never reads
``django.conf.settings``; it takes arguments, falling back to the
environment (``SERVICE_NAME``, ``LOG_LEVEL``, ``LOG_FORMAT``).

Text lines (``LOG_FORMAT=text``, the default) all match ``TEXT_LINE_PATTERN``::

    2026-11-26T07:43:49.123Z INFO service=ticket-service request_id=5f0c… trace_id=4bf9… logger=django.request message…

JSON lines (``LOG_FORMAT=json``) are objects with the keys ``timestamp``,
``level``, ``service``, ``logger``, ``request_id``, ``trace_id`` and
``message`` (plus ``exception`` when there is one). A record carries the
request id and W3C trace id of the request (or outbox task) it was written for
(``-`` outside one), Django's own ``django.request`` lines and gunicorn's
access line included.

Both formatters pass the finished line through ``redact()``: bearer tokens
(any case, in messages and tracebacks alike) and the values of query
parameters whose names look secret (``?access_token=…``) never reach the
output. A message whose arguments do not fit its format is reported the
stdlib's way ("--- Logging error ---" on stderr), never raised into the caller.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Final

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from shared_core._base.tracing import get_trace, parse_traceparent
from shared_core.context import get_request_id

__all__ = ["get_logging_config"]

#: Used when neither the argument nor ``SERVICE_NAME`` names the service.
DEFAULT_SERVICE_NAME: Final = "service"
#: Used when neither the argument nor ``LOG_FORMAT`` names a format.
DEFAULT_LOG_FORMAT: Final = "text"
#: The formats ``get_logging_config`` knows.
LOG_FORMATS: Final = ("text", "json")
#: Every text line matches this pattern; named groups are the JSON keys.
TEXT_LINE_PATTERN: Final = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+) service=(?P<service>\S+)"
    r" request_id=(?P<request_id>\S+) trace_id=(?P<trace_id>\S+) logger=(?P<logger>\S+) (?P<message>.*)$"
)

_TEXT_FORMAT = (
    "%(asctime)s.%(msecs)03dZ %(levelname)s service=%(service)s request_id=%(request_id)s trace_id=%(trace_id)s "
    "logger=%(name)s %(message)s"
)
_JSON_FORMAT = "%(levelname)s %(service)s %(name)s %(request_id)s %(trace_id)s %(message)s"
_BEARER = re.compile(r"(?i)\b(Bearer)\s+[^\s'\",]+")
#: A query parameter is secret when one of the words of its name (split at ``_ . -`` and at camelCase humps) is
#: one of these: ``access_token``, ``x-api-key``, ``accessToken``, ``clientSecret``; ``author_id`` keeps its value.
_SECRET_WORDS: Final = frozenset(
    {"token", "secret", "password", "passwd", "pwd", "auth", "authorization", "key", "apikey", "sig", "signature"}
    | {"session", "sessionid", "credential", "credentials", "code", "jwt", "cookie"}
)
#: ...or when its name, lower-cased without separators, contains one of these (``ACCESSTOKEN``, ``privatekey``).
_SECRET_PARTS: Final = (
    "token", "secret", "passw", "apikey", "privatekey", "secretkey", "signature", "credential", "sessionid",
    "authorization",
)  # fmt: skip
_PARAM = re.compile(r"([?&;])([^=&;\s\"'#]+)(=)[^&;\s\"'#]*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SEPARATORS = re.compile(r"[^a-z0-9]")
_REDACTED = "[redacted]"


def secret_name(name: str) -> bool:
    """Whether a query parameter called ``name`` holds a secret, whatever its case and word separators."""
    if any(word.lower() in _SECRET_WORDS for word in _WORD.findall(name)):
        return True
    squashed = _SEPARATORS.sub("", name.lower())
    return any(part in squashed for part in _SECRET_PARTS)


def _redact_param(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}={_REDACTED}" if secret_name(match[2]) else match[0]


def redact(text: str) -> str:
    """``text`` with bearer tokens and secret-looking query parameter values replaced by ``[redacted]``."""
    return _PARAM.sub(_redact_param, _BEARER.sub(rf"\1 {_REDACTED}", text))


class ContextFilter(logging.Filter):
    """Adds ``service``, ``request_id`` and ``trace_id`` to every record.

    It never formats the message: a record whose arguments do not fit is then
    reported by the handler, as the stdlib does, instead of raising here.
    """

    def __init__(self, service: str = DEFAULT_SERVICE_NAME) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = get_request_id() or _record_request_id(record) or "-"
        trace = get_trace()
        record.trace_id = trace.trace_id if trace is not None else _record_trace_id(record) or "-"
        return True


def _record_request_id(record: logging.LogRecord) -> str | None:
    """The id of a request that is no longer in context when the record is written.

    Django logs "Not Found" and other 4xx/5xx lines after the middleware
    returned, with the request in ``extra``; gunicorn writes its access line
    afterwards too, with the response headers among its atoms.
    """
    request_id = getattr(getattr(record, "request", None), "request_id", None)
    if isinstance(request_id, str):
        return request_id
    atoms = record.args
    return atoms.get("{x-request-id}o") if isinstance(atoms, dict) else None


def _record_trace_id(record: logging.LogRecord) -> str | None:
    """The trace id of gunicorn's access line, from the response's ``traceresponse`` (shared_core._base.tracing)."""
    atoms = record.args
    parsed = parse_traceparent(atoms.get("{traceresponse}o")) if isinstance(atoms, dict) else None
    return parsed[0] if parsed else None


class TextFormatter(logging.Formatter):
    """UTC ISO-8601 times, every record on one line (newlines escaped), secrets redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record)).replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter, with the finished line redacted (the ``exception`` field included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
            "()": JsonFormatter,
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
