"""Prometheus metrics of every service, with prometheus-client (docs: Operating, Metrics).

``service_settings`` turns them on (``METRICS_ENABLED``, default on): it puts
``MetricsMiddleware`` first in ``MIDDLEWARE``, and shared_core's app installs
``CLIENT_METRICS`` as an HTTPClient hook and, where the outbox is on, records
each delivery. Nothing else is needed in a service.

``GET /metrics`` on the service's own port answers in Prometheus' text
format, without the service token: it is meant for a scraper on the internal
network, and the edge proxy refuses the path. Under gunicorn the start script
sets ``PROMETHEUS_MULTIPROC_DIR`` (on the /tmp tmpfs), so every worker
process writes its values there and a scrape, whichever process answers it,
adds them all up (prometheus-client's multiprocess mode); the files of dead
workers are folded into archive files (shared_core._base.multiprocess), so the
directory stays bounded. Without it, as in tests, the values live in the process.

Labels never hold an id: a request is labelled with its route template
(``/api/tickets/{ticket_id}/``, not the path), an unknown path with
``UNMATCHED_ROUTE``, an unknown method with ``other``, and a status with its
class (``2xx``).
"""

from shared_core._ops.metrics.client import CLIENT_METRICS, ClientMetrics
from shared_core._ops.metrics.exposition import exposition, serve
from shared_core._ops.metrics.families import METRICS_PATH, UNMATCHED_ROUTE
from shared_core._ops.metrics.http import MetricsMiddleware, route_of
from shared_core._ops.metrics.outbox import OutboxCollector, observe_delivery

__all__ = [
    "CLIENT_METRICS",
    "METRICS_PATH",
    "UNMATCHED_ROUTE",
    "ClientMetrics",
    "MetricsMiddleware",
    "OutboxCollector",
    "exposition",
    "observe_delivery",
    "route_of",
    "serve",
]
