"""ticket-service settings: the shared part comes from shared_core (README: Environment variables)."""

import os

from shared_core.settings import service_settings

globals().update(
    service_settings(
        "ticket-service",
        apps=["ticket_service"],
        urlconf="ticket_service.urls",
        task_queues=["notifications", "attachments"],
    )
)

USER_SERVICE_URL = os.environ.get("USER_SERVICE_URL", "http://user-service:8000")
COMMUNICATION_SERVICE_URL = os.environ.get("COMMUNICATION_SERVICE_URL", "http://communication-service:8000")
FILE_SERVICE_URL = os.environ.get("FILE_SERVICE_URL", "http://file-service:8000")
