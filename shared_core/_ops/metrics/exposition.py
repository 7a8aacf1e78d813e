"""The text format of every value: this process's, or all gunicorn workers' (prometheus-client's multiprocess mode)."""

from __future__ import annotations

from contextlib import nullcontext

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, start_http_server
from prometheus_client.registry import Collector

from shared_core._base.multiprocess import locked


def _registry() -> CollectorRegistry:
    """All processes' values in multiprocess mode (``settings.METRICS_MULTIPROC_DIR``), else this process's."""
    directory = getattr(settings, "METRICS_MULTIPROC_DIR", None)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def exposition(*extra: Collector) -> bytes:
    """Every metric of this service in the text format, plus those of the ``extra`` collectors.

    In multiprocess mode the files are read under the directory's shared lock (shared_core._base.multiprocess), so
    a dead worker's files folded into the archive meanwhile are counted exactly once.
    """
    directory = getattr(settings, "METRICS_MULTIPROC_DIR", None)
    with locked(directory) if directory else nullcontext():
        body = generate_latest(_registry())
    if extra:
        own = CollectorRegistry(auto_describe=False)
        for collector in extra:
            own.register(collector)
        body += generate_latest(own)
    return body


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a container's port, on its own network
    """Serve the metrics on ``port`` from a background thread, for a process with no HTTP server (the outbox worker).

    Raises ``OSError`` when the port cannot be bound.
    """
    start_http_server(port, addr, registry=_registry())
