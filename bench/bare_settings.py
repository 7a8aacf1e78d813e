"""ticket-service's settings without shared_core's middleware: the baseline of the throughput benchmark."""

from ticket_service.settings import *  # noqa: F403

MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("shared_core.")]  # noqa: F405
