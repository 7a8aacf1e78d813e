"""user-service settings: all of them come from shared_core (docs: Configuration)."""

from shared_core.settings import service_settings

globals().update(service_settings("user-service", apps=["user_service"], urlconf="user_service.urls"))
