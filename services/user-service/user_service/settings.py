"""user-service settings: the shared part comes from shared_core (README: Environment variables)."""

from shared_core.settings import service_settings

globals().update(service_settings("user-service", apps=["user_service"], urlconf="user_service.urls"))
