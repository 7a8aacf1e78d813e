from django.urls import path

from shared_core.api import handler400, handler403, handler404, handler500, service_api
from user_service.api import router

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = service_api("user-service", ("/api", router))

urlpatterns = [path("", api.urls)]
