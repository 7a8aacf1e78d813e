from django.urls import path

from file_service.api import router
from shared_core.api import handler400, handler403, handler404, handler500, service_api

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = service_api("file-service", ("/api", router))

urlpatterns = [path("", api.urls)]
