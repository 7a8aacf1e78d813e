"""The Django app of shared_core: add ``"shared_core"`` to ``INSTALLED_APPS`` for its system checks."""

from django.apps import AppConfig
from django.core import checks

__all__ = ["SharedCoreConfig"]


class SharedCoreConfig(AppConfig):
    """Registers the checks in ``shared_core.checks``."""

    name = "shared_core"
    verbose_name = "shared core"

    def ready(self) -> None:
        from shared_core.checks import check_soft_delete_models

        checks.register(check_soft_delete_models, checks.Tags.models)
