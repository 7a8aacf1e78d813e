from django.apps import AppConfig


class TicketServiceConfig(AppConfig):
    name = "ticket_service"

    def ready(self) -> None:
        from ticket_service import signals  # noqa: F401 - connects the receivers
