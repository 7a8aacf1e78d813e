"""communication-service settings: all of them come from shared_core (docs: Configuration)."""

from shared_core.settings import service_settings

globals().update(
    service_settings(
        "communication-service",
        apps=["communication_service"],
        urlconf="communication_service.urls",
        upstreams={"user-service": "http://user-service:8000"},
    )
)
