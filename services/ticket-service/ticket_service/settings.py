"""ticket-service settings: all of them come from shared_core (docs: Configuration)."""

from shared_core.settings import service_settings

globals().update(
    service_settings(
        "ticket-service",
        apps=["ticket_service"],
        urlconf="ticket_service.urls",
        task_queues=["notifications", "attachments"],
        upstreams={
            "user-service": "http://user-service:8000",
            "communication-service": "http://communication-service:8000",
            "file-service": "http://file-service:8000",
        },
    )
)
