"""Where a read's time goes: cProfile over ticket-service's WSGI handler, in process, with and without shared_core.

The handler is Django's own (what gunicorn calls), driven in a loop as fast as one thread can: the same
read the throughput benchmark sends, through the whole middleware stack, on a scratch SQLite file. The
report is per request: microseconds with everything on and with no shared_core middleware (timed without
the profiler), then under cProfile the cumulative time of each shared_core middleware (which includes the
layers it wraps) and the functions of shared_core that cost most on their own.

Run as ``python -m bench.profiling <sqlite path>``; prints JSON.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 3000
TOKEN = "bench-profile-token"  # noqa: S105 - a throwaway token of this process's own


#: The three configurations of the throughput benchmark, as changes to ticket-service's settings.
CONFIGURATIONS = ("everything", "quiet", "bare")


def read_handlers(database: str, metrics_dir: str) -> tuple[dict[str, Any], Callable[[Any, int], None]]:
    """Django's WSGI handler of ticket-service in each of ``CONFIGURATIONS``, and ``serve(handler, count)``.

    ``serve`` sends the throughput benchmark's read of one ticket ``count`` times. Metrics are kept in
    prometheus-client's multiprocess mode in ``metrics_dir``, as in the image. ``quiet`` is
    ``METRICS_ENABLED=0`` and ``TRACING_ENABLED=0``; ``bare`` has none of shared_core's middleware.
    """
    sys.path[:0] = [str(ROOT / "services" / "ticket-service"), str(ROOT)]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="ticket_service.settings",
        DJANGO_SECRET_KEY="bench-profile-" + "x" * 50,
        SERVICE_AUTH_TOKEN=TOKEN,
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="WARNING",
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.test import override_settings
    from ticket_service.models import Ticket

    call_command("migrate", verbosity=0)
    ticket = Ticket.objects.create(title="t", requester_id=uuid.uuid4())
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/tickets/{ticket.id}/",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench",
        "HTTP_AUTHORIZATION": f"Bearer {TOKEN}",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    dropped = {
        "everything": (),
        "quiet": ("shared_core._ops.metrics.MetricsMiddleware",),
        "bare": tuple(m for m in settings.MIDDLEWARE if m.startswith("shared_core.")),
    }

    def handler(configuration: str) -> WSGIHandler:
        middleware = [m for m in settings.MIDDLEWARE if m not in dropped[configuration]]
        # The middleware reads TRACING_ENABLED once, when the handler builds it.
        with override_settings(MIDDLEWARE=middleware, TRACING_ENABLED=configuration == "everything"):
            return WSGIHandler()

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        assert status.startswith("200"), status

    def serve(app: WSGIHandler, count: int) -> None:
        for _ in range(count):
            b"".join(app({**environ, "wsgi.input": io.BytesIO()}, start_response))

    return {name: handler(name) for name in CONFIGURATIONS}, serve


def main(database: str) -> None:
    with tempfile.TemporaryDirectory() as metrics_dir:
        handlers, serve = read_handlers(database, metrics_dir)
        print(json.dumps(_profile(handlers, serve)))


def _profile(handlers: dict[str, Any], serve: Callable[[Any, int], None]) -> dict[str, Any]:
    """Microseconds per request, everything vs bare, timed; then where the time goes, under cProfile."""
    apps = {name: handlers[name] for name in ("everything", "bare")}
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():
        serve(app, 300)  # warm-up
    for _ in range(5):
        for name, app in apps.items():
            started = time.perf_counter()
            serve(app, REQUESTS // 5)
            timings[name].append((time.perf_counter() - started) / (REQUESTS // 5) * 1e6)
    profile = cProfile.Profile()
    profile.enable()
    serve(apps["everything"], REQUESTS)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    per_call = {
        f"{Path(file).name}:{line}({name})": (calls, own, total)
        for (file, line, name), (calls, _, own, total, _) in stats.items()
        if "shared_core" in file
    }
    middleware = {
        key: round(total / REQUESTS * 1e6, 1)
        for key, (_, _, total) in per_call.items()
        if key.endswith("(__call__)") and ("middleware.py" in key or "metrics.py" in key)
    }
    ranked = sorted(per_call.items(), key=lambda item: item[1][1], reverse=True)
    median = {name: sorted(values)[len(values) // 2] for name, values in timings.items()}
    return {
        "requests": REQUESTS,
        "us_per_request": {name: round(value, 1) for name, value in median.items()},
        "in_process_ratio": round(median["bare"] / median["everything"], 3),
        "middleware_cumulative_us": dict(sorted(middleware.items(), key=lambda kv: -kv[1])),
        "top_shared_core_own_us": {key: round(own / REQUESTS * 1e6, 2) for key, (_, own, _) in ranked[:12]},
    }


if __name__ == "__main__":
    main(sys.argv[1])
