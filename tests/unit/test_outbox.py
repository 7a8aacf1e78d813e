"""The transactional outbox: enqueue with the write, retry with backoff, recover lost tasks, see and retry."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from shared_core._base.tracing import TraceContext, parse_traceparent, trace_context
from shared_core.clients import HTTPClient, HTTPConnectionError, HTTPStatusError, HTTPTimeoutError, Resilience
from shared_core.context import REQUEST_ID_HEADER, request_context
from shared_core.outbox import backoff, is_transient
from shared_core.outbox._admin import outbox_stats, prune_finished, retry_failed
from shared_core.outbox._worker import Worker, recover
from shared_core.testing import Reply
from tests.testapp.tasks import broken, database_hiccup, deliver

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def now_retries(settings) -> None:
    """Backoff of zero: a retried task is due at once."""
    settings.OUTBOX_BACKOFF_BASE = 0.0


def drain() -> int:
    return Worker(worker_id="unit").drain()


def status(pk: object) -> str:
    return DBTaskResult.objects.get(pk=pk).status


def test_an_enqueue_rolled_back_with_its_transaction_leaves_no_task(upstream):
    """A task enqueued in a transaction that rolls back is gone with it, and nothing is delivered."""

    def write_then_fail() -> None:
        with transaction.atomic():
            deliver.enqueue(upstream.url, {"n": "1"})
            raise RuntimeError("the business write failed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert DBTaskResult.objects.count() == 0
    assert drain() == 0 and upstream.hits("/hook/") == []


def test_a_delivery_carries_the_enqueuing_request_id_and_continues_its_trace(upstream):
    """The worker runs a task under the request id of the request that enqueued it, in the same W3C trace."""
    enqueuing = TraceContext.start()
    with request_context("req-outbox-1"), trace_context(enqueuing):
        result = deliver.enqueue(upstream.url, {"n": "1"})
    assert drain() == 1 and status(result.id) == "SUCCESSFUL"
    (hit,) = upstream.hits("/hook/")
    assert hit.headers[REQUEST_ID_HEADER] == "req-outbox-1"
    trace_id, parent_id, _ = parse_traceparent(hit.headers["traceparent"])
    assert trace_id == enqueuing.trace_id and parent_id != enqueuing.span_id


def test_transient_failures_are_retried_with_one_key_until_success(upstream, now_retries):
    """503, a dropped connection, then 201: three attempts of one row, all with the same Idempotency-Key."""
    upstream.script("/hook/", Reply(503), Reply(drop=True), Reply(201, b"{}"))
    result = deliver.enqueue(upstream.url, {"n": "1"})
    assert drain() == 3
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "SUCCESSFUL" and row.return_value == 3 and len(row.worker_ids) == 3
    keys = {hit.headers["Idempotency-Key"] for hit in upstream.hits("/hook/")}
    assert keys == {f"outbox-{result.id}"}


@pytest.mark.django_db(transaction=True)
def test_a_transient_database_error_in_a_task_is_retried_not_failed(now_retries):
    """A task whose query fails with OperationalError twice is retried like any transient error, and succeeds."""
    result = database_hiccup.enqueue(2)
    assert drain() == 3
    row = DBTaskResult.objects.get(pk=result.id)
    assert (row.status, row.return_value, len(row.worker_ids)) == ("SUCCESSFUL", 3, 3)


def test_database_errors_that_a_retry_can_outlive_are_transient():
    """OperationalError and InterfaceError (locked, serialization failure, connection closed) are transient."""
    assert is_transient(OperationalError("database is locked"))
    assert is_transient(InterfaceError("connection already closed"))
    assert not is_transient(IntegrityError("duplicate key")) and not is_transient(ProgrammingError("bad SQL"))


def test_a_retry_waits_its_backoff_and_keeps_the_last_error(upstream, settings):
    """After a transient failure the row is READY again, due no later than base * 2**0 seconds, with the error."""
    settings.OUTBOX_BACKOFF_BASE = 60.0
    upstream.script("/hook/", Reply(503))
    before = timezone.now()
    result = deliver.enqueue(upstream.url, {"n": "1"})
    assert drain() == 1
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "READY" and before <= row.run_after <= timezone.now() + timedelta(seconds=60)
    assert "503" in row.traceback and row.exception_class_path.endswith("HTTPStatusError")
    (stats,) = outbox_stats()
    assert (stats.queue, stats.ready + stats.scheduled, stats.running, stats.failed) == ("hooks", 1, 0, 0)


def test_attempts_are_bounded_then_failed_with_the_last_error(upstream, now_retries, settings):
    """A task that never succeeds is tried OUTBOX_MAX_ATTEMPTS times, then FAILED with its last error."""
    settings.OUTBOX_MAX_ATTEMPTS = 4
    upstream.script("/hook/", Reply(503))
    result = deliver.enqueue(upstream.url, {"n": "1"})
    assert drain() == 4 and len(upstream.hits("/hook/")) == 4
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "FAILED" and "503" in row.traceback and row.finished_at is not None


def test_a_task_whose_upstream_circuit_is_open_is_postponed_without_spending_an_attempt(
    upstream, now_retries, settings
):
    """Two 503s open the circuit; the third run is refused unsent and put back for the circuit's wait, its
    attempt given back: the task keeps 2 of its 3 attempts spent, and stays READY, not FAILED."""
    settings.HTTP_CLIENT_RESILIENCE = Resilience(minimum_calls=2, open_seconds=30, retry_budget=False)
    settings.OUTBOX_MAX_ATTEMPTS = 3
    upstream.script("/hook/", Reply(503))
    result = deliver.enqueue(upstream.url, {"n": "1"})
    assert drain() == 3
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "READY" and len(row.worker_ids) == 2 and len(upstream.hits("/hook/")) == 2
    assert row.exception_class_path.endswith("HTTPCircuitOpen")
    assert row.run_after >= timezone.now() + timedelta(seconds=25)


def test_a_4xx_or_a_bug_fails_at_once(upstream, now_retries):
    """A 422 from the receiver, or an exception in the task, is FAILED after one attempt."""
    upstream.script("/hook/", Reply(422, b'{"error": "invalid"}'))
    refused = deliver.enqueue(upstream.url, {"n": "1"})
    bug = broken.enqueue()
    assert drain() == 2 and len(upstream.hits("/hook/")) == 1
    assert status(refused.id) == status(bug.id) == "FAILED"
    assert DBTaskResult.objects.get(pk=bug.id).exception_class_path == "builtins.ValueError"


def test_failed_tasks_can_be_retried_with_fresh_attempts(upstream, now_retries, settings):
    """outbox retry puts a FAILED task back to READY with no attempts spent; it is then delivered."""
    settings.OUTBOX_MAX_ATTEMPTS = 1
    upstream.script("/hook/", Reply(503), Reply(201, b"{}"))
    result = deliver.enqueue(upstream.url, {"n": "1"})
    drain()
    assert status(result.id) == "FAILED" and outbox_stats()[0].failed == 1
    assert retry_failed(queues=["hooks"]) == 1
    assert drain() == 1 and status(result.id) == "SUCCESSFUL"


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (HTTPConnectionError("refused", method="POST", path="/"), True),
        (HTTPTimeoutError("slow", method="POST", path="/"), True),
        (ValueError("bug"), False),
    ],
)
def test_transport_errors_are_transient_other_exceptions_are_not(exc, transient):
    """Connection errors and timeouts are worth retrying; a bug is not."""
    assert is_transient(exc) is transient


@pytest.mark.parametrize(("code", "transient"), [(408, True), (429, True), (500, True), (503, True), (400, False),
                                                  (404, False), (409, False), (422, False)])  # fmt: skip
def test_statuses_408_429_and_5xx_are_transient(upstream, code, transient):
    """Only 408, 429 and 5xx answers are retried by the outbox."""
    upstream.script("/x/", Reply(code, b"{}"))
    with pytest.raises(HTTPStatusError) as raised:
        HTTPClient(upstream.url, retries=0).post_json("/x/", {})
    assert is_transient(raised.value) is transient


def test_backoff_is_full_jitter_under_an_exponential_cap():
    """Backoff after attempt n lies in [0, min(cap, base * 2**(n-1))] and spreads over that range."""
    for attempt, bound in [(1, 1.0), (2, 2.0), (4, 8.0), (12, 300.0)]:
        samples = [backoff(attempt, base=1.0, cap=300.0) for _ in range(400)]
        assert all(0 <= s <= bound for s in samples)
        assert max(samples) > 0.8 * bound and min(samples) < 0.2 * bound


def claimed(result_id: object, *, minutes_ago: float, attempts: int = 1) -> None:
    DBTaskResult.objects.filter(pk=result_id).update(
        status="RUNNING",
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        worker_ids=[f"dead-{i}" for i in range(attempts)],
    )


def test_recovery_requeues_tasks_of_dead_workers_and_spares_live_ones(upstream, settings):
    """A task RUNNING past OUTBOX_RECOVER_AFTER is READY again, one out of attempts FAILED; a fresh one stays."""
    settings.OUTBOX_MAX_ATTEMPTS = 3
    stale, spent, fresh = (deliver.enqueue(upstream.url, {"n": str(i)}) for i in range(3))
    claimed(stale.id, minutes_ago=5)
    claimed(spent.id, minutes_ago=5, attempts=3)
    claimed(fresh.id, minutes_ago=0)
    assert recover(recover_after=60) == 2
    assert (status(stale.id), status(spent.id), status(fresh.id)) == ("READY", "FAILED", "RUNNING")
    assert DBTaskResult.objects.get(pk=spent.id).exception_class_path == "shared_core.outbox.WorkerLost"
    assert recover(recover_after=60) == 0
    assert drain() == 1 and len(upstream.hits("/hook/")) == 1


def test_an_attempt_that_outlived_its_recovery_does_not_overwrite_the_new_claim(upstream):
    """If a task was recovered and claimed again while an old attempt ran, the old attempt's outcome is dropped."""
    result = deliver.enqueue(upstream.url, {"n": "1"})
    worker = Worker(worker_id="slow")
    row = worker.claim()
    assert row is not None
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=timezone.now() + timedelta(seconds=1))  # a new claim
    worker.execute(row)
    assert status(result.id) == "RUNNING"


def test_outbox_status_counts_per_queue_with_the_oldest_ready_age(upstream):
    """Ready, running and failed tasks are counted per queue; the oldest ready task's age is reported."""
    deliver.enqueue(upstream.url, {"n": "1"})
    deliver.enqueue(upstream.url, {"n": "2"})
    bug = broken.enqueue()
    DBTaskResult.objects.filter(pk=bug.id).update(status="FAILED")
    DBTaskResult.objects.filter(queue_name="hooks").update(enqueued_at=timezone.now() - timedelta(seconds=30))
    stats = {s.queue: s for s in outbox_stats()}
    assert (stats["hooks"].ready, stats["hooks"].failed, stats["default"].failed) == (2, 0, 1)
    assert 30 <= stats["hooks"].oldest_ready_age < 60 and stats["default"].oldest_ready_age is None


def load_healthcheck():
    loader = importlib.machinery.SourceFileLoader("healthcheck", str(ROOT / "base-image" / "bin" / "healthcheck"))
    spec = importlib.util.spec_from_loader("healthcheck", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_worker_healthcheck_fails_once_the_loop_stops_turning(tmp_path, monkeypatch):
    """The worker's HEALTHCHECK passes on a fresh heartbeat, fails on a stale or missing one."""
    healthcheck = load_healthcheck()
    monkeypatch.setattr(healthcheck, "HEARTBEAT", str(tmp_path / "beat"))
    monkeypatch.setenv("OUTBOX_TASK_TIMEOUT", "30")
    outcomes = []
    for age in (None, 5.0, 61.0):
        if age is not None:
            (tmp_path / "beat").touch()
            os.utime(tmp_path / "beat", (time.time() - age, time.time() - age))
        with pytest.raises(SystemExit) as exited:
            healthcheck.check_worker()
        outcomes.append(exited.value.code)
    assert outcomes == [1, 0, 1]


def test_a_worker_turns_its_heartbeat_and_stops_on_request(tmp_path, upstream):
    """A running worker touches its heartbeat file, runs what is due, and returns once stopped."""
    deliver.enqueue(upstream.url, {"n": "1"})
    worker = Worker(worker_id="loop", heartbeat=tmp_path / "beat", max_tasks=1)
    worker.run()
    assert worker.done == 1 and (tmp_path / "beat").exists() and len(upstream.hits("/hook/")) == 1


def test_the_documented_prune_command_removes_old_finished_tasks_only(upstream):
    """prune_db_task_results (django-tasks-db's) works on the outbox: old finished tasks go, others stay."""
    from django.core.management import call_command

    old_done, new_done, old_failed, waiting = (deliver.enqueue(upstream.url, {"n": str(i)}) for i in range(4))
    long_ago = timezone.now() - timedelta(days=10)
    DBTaskResult.objects.filter(pk=old_done.id).update(status="SUCCESSFUL", finished_at=long_ago)
    DBTaskResult.objects.filter(pk=new_done.id).update(status="SUCCESSFUL", finished_at=timezone.now())
    DBTaskResult.objects.filter(pk=old_failed.id).update(status="FAILED", finished_at=long_ago)
    call_command("prune_db_task_results", "--queue-name", "*", "--min-age-days", "7", "--failed-min-age-days", "30")
    kept = set(DBTaskResult.objects.values_list("pk", flat=True))
    assert {str(pk) for pk in kept} == {new_done.id, old_failed.id, waiting.id}


def test_the_outbox_command_shows_retries_and_works(upstream, now_retries, settings, tmp_path):
    """`outbox status --json` counts per queue, `outbox retry` takes task ids, and `outbox work` delivers."""
    import io
    import json

    from django.core.management import CommandError, call_command

    settings.OUTBOX_MAX_ATTEMPTS = 1
    upstream.script("/hook/", Reply(503), Reply(201, b"{}"))
    failed = deliver.enqueue(upstream.url, {"n": "1"})
    drain()
    out = io.StringIO()
    call_command("outbox", "status", "--json", stdout=out)
    assert json.loads(out.getvalue())["queues"][0] | {"oldest_ready_age": None} == {
        "queue": "hooks", "ready": 0, "scheduled": 0, "running": 0, "failed": 1, "oldest_ready_age": None,
    }  # fmt: skip
    with pytest.raises(CommandError, match="UUID"):
        call_command("outbox", "retry", "not-a-uuid")
    call_command("outbox", "retry", failed.id, stdout=io.StringIO())
    call_command("outbox", "work", "--max-tasks", "1", "--heartbeat", str(tmp_path / "beat"))
    assert status(failed.id) == "SUCCESSFUL"


def test_the_outbox_command_says_when_a_service_has_no_outbox():
    """In a service without task queues, `outbox status` is a one-line error, not a traceback."""
    from django.core.management import CommandError, call_command
    from django.test import override_settings

    with override_settings(INSTALLED_APPS=["shared_core"]), pytest.raises(CommandError, match="no outbox"):
        call_command("outbox", "status")


def finished(result_id: object, *, status: str, days_ago: float) -> None:
    DBTaskResult.objects.filter(pk=result_id).update(
        status=status, finished_at=timezone.now() - timedelta(days=days_ago)
    )


def test_prune_deletes_old_successful_tasks_only(upstream, settings):
    """Successful tasks older than OUTBOX_RETENTION go; recent ones, failed and ready ones stay."""
    settings.OUTBOX_RETENTION = 3 * 24 * 3600
    old, recent, failed, ready = (deliver.enqueue(upstream.url, {"n": str(n)}).id for n in range(4))
    finished(old, status="SUCCESSFUL", days_ago=4)
    finished(recent, status="SUCCESSFUL", days_ago=1)
    finished(failed, status="FAILED", days_ago=30)
    assert prune_finished(batch=1) == 1
    assert {str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)} == {recent, failed, ready}


def test_a_retention_of_zero_keeps_every_task(upstream, settings):
    """OUTBOX_RETENTION=0 prunes nothing, however old."""
    settings.OUTBOX_RETENTION = 0
    finished(deliver.enqueue(upstream.url, {"n": "1"}).id, status="SUCCESSFUL", days_ago=365)
    assert prune_finished() == 0 and DBTaskResult.objects.count() == 1


def test_the_prune_command_takes_an_age_and_refuses_a_bad_one(upstream):
    """`outbox prune --older-than 3600` deletes what finished before then and says how many; 0 is refused."""
    finished(deliver.enqueue(upstream.url, {"n": "1"}).id, status="SUCCESSFUL", days_ago=1)
    out = io.StringIO()
    call_command("outbox", "prune", "--older-than", "3600", stdout=out)
    assert out.getvalue().strip() == "1 successful task(s) pruned" and DBTaskResult.objects.count() == 0
    with pytest.raises(CommandError, match="positive"):
        call_command("outbox", "prune", "--older-than", "0")


def test_the_gauges_query_reads_unfinished_tasks_through_their_index(upstream):
    """The outbox gauge's query uses the partial index of unfinished tasks, so finished rows are never read."""
    deliver.enqueue(upstream.url, {"n": "1"})
    with CaptureQueriesContext(connection) as ctx:
        outbox_stats()
    (query,) = ctx.captured_queries
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table is scanned anyway; ask if it can use it
            cursor.execute(f"EXPLAIN {query['sql']}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
        plan = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
    assert "outbox_unfinished_idx" in plan, plan
