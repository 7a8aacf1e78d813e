"""Soft delete at scale: 1,000,000 rows, 10% deleted, queried through BaseModel vs a plain model;
and the API's keyset pagination: a page 890,000 rows deep vs the first page, with OFFSET for contrast.

Run as `python -m bench.softdelete DATABASE_URL`; prints one JSON object. Rows are made in the
database itself (recursive CTE on SQLite, generate_series on PostgreSQL), so the timing is of queries.
"""

import json
import random
import statistics
import sys
import time

import dj_database_url
import django
from django.conf import settings

ROWS = 1_000_000
LOOKUPS = 1000
PAGES = 200
REPEATS = 5
#: How many live rows the deep page skips.
DEEP = 890_000
#: OFFSET pages read every row they skip: a few are enough to show it.
OFFSET_PAGES = 3


def setup(url: str) -> None:
    settings.configure(
        DATABASES={"default": dj_database_url.parse(url)},
        INSTALLED_APPS=["shared_core", "bench.scaleapp"],
        ROOT_URLCONF="bench.scaleapp.api",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


def populate() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            seq = f"WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {ROWS - 1})"
            stamp = "strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || n || ' seconds')"
            cursor.execute(
                f"{seq} INSERT INTO scaleapp_liverow (id, created_at, updated_at, is_deleted, deleted_at, code) "
                f"SELECT lower(hex(randomblob(16))), {stamp}, {stamp}, n % 10 = 0, "
                f"CASE WHEN n % 10 = 0 THEN {stamp} END, 'c' || n FROM seq"
            )
            cursor.execute(
                f"{seq} INSERT INTO scaleapp_plainrow (id, created_at, updated_at, code) "
                f"SELECT lower(hex(randomblob(16))), {stamp}, {stamp}, 'c' || n FROM seq WHERE n % 10 != 0"
            )
        else:
            stamp = "timestamptz '2026-01-01' + n * interval '1 second'"
            cursor.execute(
                "INSERT INTO scaleapp_liverow (id, created_at, updated_at, is_deleted, deleted_at, code) "
                f"SELECT gen_random_uuid(), {stamp}, {stamp}, n % 10 = 0, "
                f"CASE WHEN n % 10 = 0 THEN {stamp} END, 'c' || n FROM generate_series(0, {ROWS - 1}) n"
            )
            cursor.execute(
                "INSERT INTO scaleapp_plainrow (id, created_at, updated_at, code) "
                f"SELECT gen_random_uuid(), {stamp}, {stamp}, 'c' || n FROM generate_series(0, {ROWS - 1}) n "
                "WHERE n % 10 != 0"
            )
        cursor.execute("ANALYZE")


def timed(fns: dict, count: int) -> dict[str, list[float]]:
    """Microseconds per call for each function, repeats interleaved so drift hits all alike."""
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(REPEATS):
        for name, fn in fns.items():
            started = time.perf_counter()
            for _ in range(count):
                fn()
            runs[name].append((time.perf_counter() - started) / count * 1e6)
    return runs


def summary(runs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}


def keyset(model: type) -> dict:
    """A page of 50 through the API (Django's test client, in process): the first vs one DEEP rows in.

    The API's whole path is timed, as a client's request meets it minus the network: URL, validation,
    KeysetPagination's query, serialisation. OFFSET's deep page, for contrast, is the bare query.
    """
    from django.test import Client

    from shared_core._web.pagination import cursor_after  # the API's own cursor, not public

    client = Client()
    ordered = model.objects.order_by("-created_at", "-pk")
    deep_url = f"/api/rows/?limit=50&cursor={cursor_after(ordered[DEEP - 1])}"
    first, deep = client.get("/api/rows/?limit=50"), client.get(deep_url)
    assert first.status_code == deep.status_code == 200 and len(first.json()["results"]) == 50
    expected = [str(pk) for pk in ordered.values_list("pk", flat=True)[DEEP : DEEP + 50]]
    assert [row["id"] for row in deep.json()["results"]] == expected
    runs = timed({"first": lambda: client.get("/api/rows/?limit=50"), "deep": lambda: client.get(deep_url)}, PAGES)
    offset = timed({"offset": lambda: list(ordered[DEEP : DEEP + 50])}, OFFSET_PAGES)["offset"]
    return {
        "first_us": summary(runs["first"]),
        "deep_us": summary(runs["deep"]),
        "offset_deep_us": summary(offset),
        "deep_rows": DEEP,
        # Per round, first and deep ran back to back: the median of their ratios cancels the machine's drift.
        "ratio": statistics.median(d / f for d, f in zip(runs["deep"], runs["first"], strict=True)),
    }


def main(url: str) -> dict:
    setup(url)
    from django.db import connection

    from bench.scaleapp.models import LiveRow, PlainRow

    started = time.perf_counter()
    populate()
    populate_s = time.perf_counter() - started
    rng = random.Random(7)
    codes = [f"c{n}" for n in (rng.randrange(ROWS) for _ in range(LOOKUPS * 2)) if n % 10][:LOOKUPS]
    it = {"live": iter(codes * REPEATS * 2), "plain": iter(codes * REPEATS * 2)}
    results = {}
    for label, base, plain in (
        (
            "lookup",
            lambda: LiveRow.objects.filter(code=next(it["live"])).first(),
            lambda: PlainRow.objects.filter(code=next(it["plain"])).first(),
        ),
        (
            "newest_page",
            lambda: list(LiveRow.objects.order_by("-created_at")[:50]),
            lambda: list(PlainRow.objects.order_by("-created_at")[:50]),
        ),
    ):
        count = LOOKUPS if label == "lookup" else PAGES
        runs = timed({"base": base, "plain": plain}, count)
        base_runs, plain_runs = runs["base"], runs["plain"]
        results[label] = {
            "basemodel_us": summary(base_runs),
            "plain_us": summary(plain_runs),
            "ratio": statistics.median(base_runs) / statistics.median(plain_runs),
        }
    results["keyset"] = keyset(LiveRow)
    query = str(LiveRow.objects.order_by("-created_at")[:50].query)
    with connection.cursor() as cursor:
        explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(explain + query.replace("False", "0" if connection.vendor == "sqlite" else "false"))
        plan = [" ".join(str(c) for c in row) for row in cursor.fetchall()]
    return {
        "vendor": connection.vendor,
        "rows": ROWS,
        "deleted_fraction": 0.1,
        "populate_s": populate_s,
        **results,
        "newest_page_plan": plan,
        "live_rows": LiveRow.objects.count(),
        "all_rows": LiveRow.all_objects.count(),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
