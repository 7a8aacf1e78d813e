"""file-service settings: the shared part comes from shared_core (README: Environment variables)."""

import os
from pathlib import Path

from shared_core.settings import service_settings

globals().update(service_settings("file-service", apps=["file_service"], urlconf="file_service.urls"))

FILE_STORAGE_DIR = Path(os.environ.get("FILE_STORAGE_DIR", "/data/files"))
TICKET_SERVICE_URL = os.environ.get("TICKET_SERVICE_URL", "http://ticket-service:8000")
