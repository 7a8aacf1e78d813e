"""prometheus-client's multiprocess directory stays bounded as processes come and go (_base.multiprocess)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.parser import text_string_to_metric_families

from shared_core._base.multiprocess import compact, locked

#: Worker replacements in the bounded-directory test: real processes, each writing and exiting.
REPLACEMENTS = 2000


def run_worker(directory: Path, *, requests: int, gauge: float) -> int:
    """Fork a process that records like a gunicorn worker in multiprocess mode, exits, and is reaped; its pid."""
    pid = os.fork()
    if pid == 0:  # the child: metrics made now write to files named by its own pid
        try:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
            values.ValueClass = values.MultiProcessValue()
            Counter("served", "requests", ["route"], registry=None).labels("/a").inc(requests)
            Histogram("latency", "seconds", registry=None, buckets=(1.0,)).observe(0.5)
            Gauge("in_flight", "now", registry=None, multiprocess_mode="livesum").inc()
            Gauge("peak", "max", registry=None, multiprocess_mode="max").set(gauge)
            Gauge("per_pid", "all", registry=None, multiprocess_mode="all").set(1)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def scrape(directory: Path) -> dict[str, float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    with locked(str(directory)):
        text = generate_latest(registry).decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def db_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.db"))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    path = tmp_path / "prometheus"
    path.mkdir()
    return path


def test_files_stay_flat_and_totals_exact_over_thousands_of_replacements(directory):
    """2,000 workers that each served 3 requests and exited: 6,000 counted, and only the archive files remain."""
    for n in range(REPLACEMENTS):
        compact(run_worker(directory, requests=3, gauge=n % 7), str(directory))
        if n in (10, REPLACEMENTS - 1):
            assert db_files(directory) == ["counter_archive.db", "gauge_max_archive.db", "histogram_archive.db"]
    seen = scrape(directory)
    assert seen["served_total[('route', '/a')]"] == 3 * REPLACEMENTS
    assert seen["latency_count[]"] == REPLACEMENTS
    assert seen["peak[]"] == 6
    assert not any(name.startswith(("in_flight", "per_pid")) for name in seen)
    assert sum(p.stat().st_size for p in directory.iterdir()) <= 3 * 64 * 1024  # three files of one mmap page set


def test_a_scrape_counts_live_and_archived_processes_once_each(directory):
    """Totals are the same before and after a dead process is folded in, with a live process beside it."""
    first = run_worker(directory, requests=2, gauge=-1)
    run_worker(directory, requests=5, gauge=-3)  # not compacted: as if still running
    before = scrape(directory)
    compact(first, str(directory))
    after = scrape(directory)
    assert before["served_total[('route', '/a')]"] == after["served_total[('route', '/a')]"] == 7
    assert after["peak[]"] == -1  # a max of negative values is not taken over by the archive's empty start


def test_compacting_a_process_with_no_files_changes_nothing(directory):
    """A pid that wrote nothing (it died at boot): nothing removed, no archive made."""
    assert compact(999_999_999, str(directory)) == 0 and db_files(directory) == []
