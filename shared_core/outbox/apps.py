"""The outbox's own app: installed by ``service_settings`` where the outbox is on, for its migrations."""

from django.apps import AppConfig

__all__ = ["OutboxConfig"]


class OutboxConfig(AppConfig):
    """Indexes on ``django_tasks_db``'s table that the outbox's gauge and pruning read (no models of its own)."""

    name = "shared_core.outbox"
    label = "shared_core_outbox"
    verbose_name = "shared core outbox"
