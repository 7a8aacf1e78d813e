"""communication-service settings: the shared part comes from shared_core (README: Environment variables)."""

import os

from shared_core.settings import service_settings

globals().update(
    service_settings("communication-service", apps=["communication_service"], urlconf="communication_service.urls")
)

USER_SERVICE_URL = os.environ.get("USER_SERVICE_URL", "http://user-service:8000")
