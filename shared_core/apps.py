"""The Django app of shared_core: add ``"shared_core"`` to ``INSTALLED_APPS`` for its checks and metrics."""

from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks

__all__ = ["SharedCoreConfig"]


class SharedCoreConfig(AppConfig):
    """Registers the checks in ``shared_core._ops.checks``; with ``METRICS_ENABLED``, the metrics' hooks too.

    Those are ``shared_core._ops.metrics.CLIENT_METRICS`` among HTTPClient's hooks,
    and, where the outbox is on, a ``task_finished`` receiver that records
    each run and delivery.
    """

    name = "shared_core"
    verbose_name = "shared core"

    def ready(self) -> None:
        from shared_core._ops.checks import check_soft_delete_models

        checks.register(check_soft_delete_models, checks.Tags.models)
        if getattr(settings, "METRICS_ENABLED", False):
            from shared_core._ops.metrics import CLIENT_METRICS, observe_delivery
            from shared_core.instrumentation import get_hooks, set_hooks

            if CLIENT_METRICS not in get_hooks():
                set_hooks([*get_hooks(), CLIENT_METRICS])
            if apps.is_installed("django_tasks"):
                from django_tasks.signals import task_finished

                task_finished.connect(observe_delivery, dispatch_uid="shared_core._ops.metrics.observe_delivery")
