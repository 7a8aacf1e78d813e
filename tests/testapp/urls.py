import logging
import time

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from shared_core._web.middleware import callers
from shared_core.context import get_deadline, get_request_id
from tests.testapp.api import api

logger = logging.getLogger(__name__)


def whoami(request: HttpRequest) -> HttpResponse:
    deadline = get_deadline()
    return JsonResponse(
        {
            "request_id": get_request_id(),
            "remaining": deadline.remaining() if deadline else None,
            "caller": getattr(request, "caller", None),
        }
    )


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def cut_outside_the_wrapper(request: HttpRequest) -> HttpResponse:
    """A statement PostgreSQL cuts at ``statement_timeout`` outside shared_core._web.db's wrapper, as it can cut a
    COMMIT: Django's error, with the driver's QueryCanceled as its cause."""
    connection.ensure_connection()
    raw = connection.connection
    try:
        with connection.wrap_database_errors:
            raw.execute("SET statement_timeout = 1")
            raw.execute("SELECT pg_sleep(0.5)")
    finally:
        raw.execute("RESET statement_timeout")
    return JsonResponse({"cut": False})


def database_gone(request: HttpRequest) -> HttpResponse:
    """The server ends this request's connection (as a restart does), then the view queries again (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    return JsonResponse({"gone": False})


def slow_sql(request: HttpRequest) -> HttpResponse:
    """A statement that takes ?seconds= (PostgreSQL), or one sent after sleeping that long (SQLite)."""
    seconds = float(request.GET.get("seconds", "5"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        else:
            time.sleep(seconds)
            cursor.execute("SELECT 1")
    return JsonResponse({"slept": seconds})


def log_mistake(request: HttpRequest) -> HttpResponse:
    """Logs with arguments that do not fit the format, then answers."""
    logger.warning("%d rows for %s", "not-a-number")
    return JsonResponse({"ok": True})


@callers("ticket-service")
def only_tickets(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"caller": request.caller})  # type: ignore[attr-defined]


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/whoami/", whoami),
    path("api/slow-sql/", slow_sql),
    path("api/database-gone/", database_gone),
    path("api/cut-outside-the-wrapper/", cut_outside_the_wrapper),
    path("api/log-mistake/", log_mistake),
    path("api/only-tickets/", only_tickets),
    path("healthz", healthz),
    path("", api.urls),
]
