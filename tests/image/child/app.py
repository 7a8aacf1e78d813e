"""A one-file Django service for the base image's contract tests: settings, views and WSGI app."""

import logging
import os
import time

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from shared_core.logging_config import get_logging_config

SECRET_KEY = "contract-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = __name__
INSTALLED_APPS = ["shared_core"]
MIDDLEWARE = ["shared_core._ops.metrics.MetricsMiddleware", "shared_core._web.middleware.RequestContextMiddleware"]
METRICS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
DATABASES: dict[str, dict[str, str]] = {}
LOGGING = get_logging_config("contract-child")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready while /tmp/ready exists: a test turns readiness on and off."""
    ready = os.path.exists("/tmp/ready")
    return JsonResponse({"ready": ready}, status=200 if ready else 503)


def slow(request: HttpRequest) -> JsonResponse:
    seconds = float(request.GET.get("seconds", "2"))
    logging.getLogger("contract").warning("slow request started")
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


urlpatterns = [path("healthz", healthz), path("readyz", readyz), path("slow", slow)]
application = get_wsgi_application()
