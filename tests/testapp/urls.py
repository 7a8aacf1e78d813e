from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from shared_core.context import get_deadline, get_request_id


def whoami(request: HttpRequest) -> HttpResponse:
    deadline = get_deadline()
    return JsonResponse({"request_id": get_request_id(), "remaining": deadline.remaining() if deadline else None})


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/whoami/", whoami),
    path("healthz", healthz),
]
