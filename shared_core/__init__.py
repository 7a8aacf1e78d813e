"""shared_core: the common parts of Django services — a soft-delete model, a safe HTTP client, one logging setup.

Every public name is importable from here (``from shared_core import BaseModel, HTTPClient``)
and from the public module it lives in. Importing the package itself needs neither Django
settings nor a network: each name is loaded on first use. Modules whose names start with an
underscore are internal and may change in any release; the API reference lists the rest.

``__version__`` is the one version of shared_core and of the base image.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Each public name and the public module it lives in.
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(
        ["BaseModel", "IdempotentModel", "RowDeleted", "SoftDeleteManager", "SoftDeleteQuerySet", "live_unique"],
        "models",
    ),
    **dict.fromkeys(["post_restore", "post_soft_delete"], "signals"),
    **dict.fromkeys(
        [
            "HTTPBulkheadFull",
            "HTTPCircuitOpen",
            "HTTPClient",
            "HTTPClientError",
            "HTTPConnectionError",
            "HTTPDeadlineExceeded",
            "HTTPDecodeError",
            "HTTPStatusError",
            "HTTPTimeoutError",
            "HTTPUpstreamUnavailable",
            "Resilience",
            "upstream",
        ],
        "clients",
    ),
    **dict.fromkeys(["Deadline", "DeadlineExceeded", "get_deadline", "get_request_id", "request_context"], "context"),
    **dict.fromkeys(
        [
            "ERROR_RESPONSES",
            "APIError",
            "ErrorOut",
            "IdempotencyKey",
            "KeysetPagination",
            "ListFilters",
            "ServiceToken",
            "Timestamp",
            "callers",
            "create_once",
            "fetch_reference",
            "get_or_404",
            "restore_or_409",
            "service_api",
            "text",
            "visible",
        ],
        "api",
    ),
    "service_settings": "settings",
    "get_logging_config": "logging_config",
    "get_wsgi_application": "wsgi",
}

__all__ = [
    "ERROR_RESPONSES",
    "APIError",
    "BaseModel",
    "Deadline",
    "DeadlineExceeded",
    "ErrorOut",
    "HTTPBulkheadFull",
    "HTTPCircuitOpen",
    "HTTPClient",
    "HTTPClientError",
    "HTTPConnectionError",
    "HTTPDeadlineExceeded",
    "HTTPDecodeError",
    "HTTPStatusError",
    "HTTPTimeoutError",
    "HTTPUpstreamUnavailable",
    "IdempotencyKey",
    "IdempotentModel",
    "KeysetPagination",
    "ListFilters",
    "Resilience",
    "RowDeleted",
    "ServiceToken",
    "SoftDeleteManager",
    "SoftDeleteQuerySet",
    "Timestamp",
    "__version__",
    "callers",
    "create_once",
    "fetch_reference",
    "get_deadline",
    "get_logging_config",
    "get_or_404",
    "get_request_id",
    "get_wsgi_application",
    "live_unique",
    "post_restore",
    "post_soft_delete",
    "request_context",
    "restore_or_409",
    "service_api",
    "service_settings",
    "text",
    "upstream",
    "visible",
]

if TYPE_CHECKING:
    from shared_core.api import (
        ERROR_RESPONSES,
        APIError,
        ErrorOut,
        IdempotencyKey,
        KeysetPagination,
        ListFilters,
        ServiceToken,
        Timestamp,
        callers,
        create_once,
        fetch_reference,
        get_or_404,
        restore_or_409,
        service_api,
        text,
        visible,
    )
    from shared_core.clients import (
        HTTPBulkheadFull,
        HTTPCircuitOpen,
        HTTPClient,
        HTTPClientError,
        HTTPConnectionError,
        HTTPDeadlineExceeded,
        HTTPDecodeError,
        HTTPStatusError,
        HTTPTimeoutError,
        HTTPUpstreamUnavailable,
        Resilience,
        upstream,
    )
    from shared_core.context import Deadline, DeadlineExceeded, get_deadline, get_request_id, request_context
    from shared_core.logging_config import get_logging_config
    from shared_core.models import (
        BaseModel,
        IdempotentModel,
        RowDeleted,
        SoftDeleteManager,
        SoftDeleteQuerySet,
        live_unique,
    )
    from shared_core.settings import service_settings
    from shared_core.signals import post_restore, post_soft_delete
    from shared_core.wsgi import get_wsgi_application


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'shared_core' has no attribute {name!r}")
    value = getattr(import_module(f"shared_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
