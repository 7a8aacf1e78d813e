from django.urls import path

from shared_core.api import handler400, handler403, handler404, handler500, service_api
from ticket_service.api import router

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = service_api("ticket-service", ("/api", router))

urlpatterns = [path("", api.urls)]
