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

#: Each public name and the public module it lives in: the one list, from which ``__all__`` is made.
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(
        [
            "BaseModel",
            "ChangeTrackingModel",
            "DeleteResult",
            "Deletion",
            "IdempotentModel",
            "RowDeleted",
            "SoftDeleteManager",
            "SoftDeleteModel",
            "SoftDeleteQuerySet",
            "TimestampedModel",
            "UUIDModel",
            "live_unique",
        ],
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
            "soft_delete_routes",
            "text",
            "visible",
        ],
        "api",
    ),
    "service_settings": "settings",
    "get_logging_config": "logging_config",
    "get_wsgi_application": "wsgi",
}

#: tests/unit/test_layers.py checks the TYPE_CHECKING block below against _PUBLIC.
__all__ = sorted(["__version__", *_PUBLIC])

if TYPE_CHECKING:  # what static tools read: each public name re-exported (`X as X`)
    from shared_core.api import (
        ERROR_RESPONSES as ERROR_RESPONSES,
        APIError as APIError,
        ErrorOut as ErrorOut,
        IdempotencyKey as IdempotencyKey,
        KeysetPagination as KeysetPagination,
        ListFilters as ListFilters,
        ServiceToken as ServiceToken,
        Timestamp as Timestamp,
        callers as callers,
        create_once as create_once,
        fetch_reference as fetch_reference,
        get_or_404 as get_or_404,
        restore_or_409 as restore_or_409,
        service_api as service_api,
        soft_delete_routes as soft_delete_routes,
        text as text,
        visible as visible,
    )
    from shared_core.clients import (
        HTTPBulkheadFull as HTTPBulkheadFull,
        HTTPCircuitOpen as HTTPCircuitOpen,
        HTTPClient as HTTPClient,
        HTTPClientError as HTTPClientError,
        HTTPConnectionError as HTTPConnectionError,
        HTTPDeadlineExceeded as HTTPDeadlineExceeded,
        HTTPDecodeError as HTTPDecodeError,
        HTTPStatusError as HTTPStatusError,
        HTTPTimeoutError as HTTPTimeoutError,
        HTTPUpstreamUnavailable as HTTPUpstreamUnavailable,
        Resilience as Resilience,
        upstream as upstream,
    )
    from shared_core.context import (
        Deadline as Deadline,
        DeadlineExceeded as DeadlineExceeded,
        get_deadline as get_deadline,
        get_request_id as get_request_id,
        request_context as request_context,
    )
    from shared_core.logging_config import (
        get_logging_config as get_logging_config,
    )
    from shared_core.models import (
        BaseModel as BaseModel,
        ChangeTrackingModel as ChangeTrackingModel,
        DeleteResult as DeleteResult,
        Deletion as Deletion,
        IdempotentModel as IdempotentModel,
        RowDeleted as RowDeleted,
        SoftDeleteManager as SoftDeleteManager,
        SoftDeleteModel as SoftDeleteModel,
        SoftDeleteQuerySet as SoftDeleteQuerySet,
        TimestampedModel as TimestampedModel,
        UUIDModel as UUIDModel,
        live_unique as live_unique,
    )
    from shared_core.settings import (
        service_settings as service_settings,
    )
    from shared_core.signals import (
        post_restore as post_restore,
        post_soft_delete as post_soft_delete,
    )
    from shared_core.wsgi import (
        get_wsgi_application as get_wsgi_application,
    )


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'shared_core' has no attribute {name!r}")
    value = getattr(import_module(f"shared_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
