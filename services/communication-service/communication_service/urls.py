from django.urls import path

from communication_service.api import router
from shared_core.api import handler400, handler403, handler404, handler500, service_api

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = service_api("communication-service", ("/api", router))

urlpatterns = [path("", api.urls)]
