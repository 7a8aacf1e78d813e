"""The outbox: creating a row with its notification enqueued vs the synchronous call it replaced; delivery
throughput; commit-to-delivered latency with an idle worker on default settings.

Run as `python -m bench.outbox DATABASE_URL`; prints one JSON object. In process: Django's test client
drives the two create views (bench/scaleapp/outbox.py), shared_core's Worker delivers, and the client
benchmark's local gunicorn upstream receives.
"""

import json
import random
import statistics
import sys
import threading
import time

import dj_database_url
import django
from django.conf import settings

from bench.client import serve
from bench.stats import summary

CREATES = 200
ROUNDS = 5
DELIVERIES = 1000
LATENCY_SAMPLES = 40


def setup(url: str, upstream: str) -> None:
    settings.configure(
        DATABASES={"default": dj_database_url.parse(url)},
        INSTALLED_APPS=["shared_core", "django_tasks", "django_tasks_db", "bench.scaleapp"],
        TASKS={"default": {"BACKEND": "shared_core.outbox.OutboxBackend", "QUEUES": ["bench"]}},
        ROOT_URLCONF="bench.scaleapp.outbox",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        BENCH_UPSTREAM=upstream,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def creates() -> dict:
    """Latency of each create, both ways, in interleaved rounds; req/s from the per-round medians."""
    from django.test import Client

    client = Client()
    times: dict[str, list[float]] = {"outbox": [], "call": []}
    rates: dict[str, list[float]] = {"outbox": [], "call": []}
    for _ in range(ROUNDS):
        for way in times:
            started = time.perf_counter()
            for _ in range(CREATES):
                t = time.perf_counter()
                assert client.post(f"/{way}/").status_code == 201
                times[way].append((time.perf_counter() - t) * 1000)
            rates[way].append(CREATES / (time.perf_counter() - started))
    per_round = [o / c for o, c in zip(rates["outbox"], rates["call"], strict=True)]
    return {
        "creates_per_round": CREATES,
        **{
            way: {"rps": summary(rates[way]), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}
            for way, ms in times.items()
        },
        "outbox_vs_call_rps": statistics.median(per_round),
        "outbox_vs_call_rps_rounds": summary(per_round),
    }


def throughput() -> dict:
    """Tasks per second one worker delivers from a full queue to a local upstream."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from bench.scaleapp.models import LiveRow
    from bench.scaleapp.outbox import notify
    from shared_core.outbox._worker import Worker

    DBTaskResult.objects.all().delete()
    with transaction.atomic():
        for _ in range(DELIVERIES):
            notify.enqueue(str(LiveRow.objects.create(code="q").id))
    started = time.perf_counter()
    delivered = Worker(worker_id="bench-throughput").drain()
    elapsed = time.perf_counter() - started
    return {"tasks": delivered, "seconds": elapsed, "tasks_per_s": delivered / elapsed}


def latency() -> dict:
    """Commit to delivered (the task recorded done after the upstream answered), one task at a time at random
    moments, the worker idle in between."""
    from django.db import connection, transaction
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from bench.scaleapp.models import LiveRow
    from bench.scaleapp.outbox import notify
    from shared_core.outbox._worker import Worker

    committed: dict[str, object] = {}
    rng = random.Random(11)

    def enqueue_slowly() -> None:
        for _ in range(LATENCY_SAMPLES):
            time.sleep(rng.uniform(0.05, 0.6))
            with transaction.atomic():
                row = LiveRow.objects.create(code="l")
                result = notify.enqueue(str(row.id))
            committed[result.id] = timezone.now()
        connection.close()

    writer = threading.Thread(target=enqueue_slowly)
    writer.start()
    Worker(worker_id="bench-latency", max_tasks=LATENCY_SAMPLES).run()  # the default OUTBOX_POLL_INTERVAL
    writer.join()
    rows = DBTaskResult.objects.filter(pk__in=list(committed)).values_list("pk", "finished_at")
    finished = {str(pk): at for pk, at in rows}
    seconds = [(finished[pk] - at).total_seconds() for pk, at in committed.items()]
    return {"samples": len(seconds), "p50_s": percentile(seconds, 50), "p99_s": percentile(seconds, 99)}


def main(url: str) -> dict:
    server, upstream = serve()
    try:
        setup(url, upstream)
        from django.db import connection

        return {
            "vendor": connection.vendor,
            "create": creates(),
            "delivery": throughput(),
            "commit_to_delivered": latency(),
        }
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
