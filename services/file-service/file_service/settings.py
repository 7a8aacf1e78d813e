"""file-service settings: all of them come from shared_core (docs: Configuration)."""

from shared_core.settings import service_settings

globals().update(
    service_settings(
        "file-service",
        apps=["file_service"],
        urlconf="file_service.urls",
        upstreams={"ticket-service": "http://ticket-service:8000"},
        variables={"FILE_STORAGE_DIR": "/data/files"},
    )
)
