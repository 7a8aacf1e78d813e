"""prometheus-client's multiprocess directory, kept bounded however many worker processes come and go.

Under gunicorn each worker process writes its metrics to files named by its
pid in ``PROMETHEUS_MULTIPROC_DIR``; prometheus-client never removes them
(``mark_process_dead`` only drops live gauges), so every replaced worker
(``GUNICORN_MAX_REQUESTS``, a timeout, a crash) left 16-36 KiB behind until
the directory's file system was full.

``compact(pid, directory)``, which the base image's gunicorn configuration
calls from ``child_exit`` in the master process, folds a dead process's
values into one archive file per kind and removes its files:

- counters, histograms, summaries and ``sum`` gauges are added, so totals
  never go back (a scrape sees the same sums before and after);
- ``max`` / ``min`` gauges keep the larger / smaller value, ``mostrecent``
  the newer one;
- ``all`` and every ``live*`` gauge of the dead process are dropped: they
  describe a process that no longer exists.

The directory then holds the live processes' files plus at most one archive
file per kind. Compaction takes an exclusive lock on the directory and
``locked(directory)`` a shared one around each scrape, so a scrape never
counts a value twice or finds a file gone mid-read.
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from prometheus_client.mmap_dict import MmapedDict

__all__ = ["ARCHIVE", "compact", "locked"]

#: The "pid" part of the archive files' names: ``counter_archive.db``, ``gauge_max_archive.db``.
ARCHIVE: Final = "archive"
_LOCK_FILE: Final = ".lock"

_Merge = Callable[[float, float, float, float], tuple[float, float]]


def _add(value: float, stamp: float, old: float, old_stamp: float) -> tuple[float, float]:
    return value + old, max(stamp, old_stamp)


def _larger(value: float, stamp: float, old: float, old_stamp: float) -> tuple[float, float]:
    return (value, stamp) if value > old else (old, old_stamp)


def _smaller(value: float, stamp: float, old: float, old_stamp: float) -> tuple[float, float]:
    return (value, stamp) if value < old else (old, old_stamp)


def _newer(value: float, stamp: float, old: float, old_stamp: float) -> tuple[float, float]:
    return (value, stamp) if stamp >= old_stamp else (old, old_stamp)


#: How a dead process's values join the archive, by file kind; kinds not here are dropped.
_MERGES: Final[dict[str, _Merge]] = {
    "counter": _add,
    "histogram": _add,
    "summary": _add,
    "gauge_sum": _add,
    "gauge_max": _larger,
    "gauge_min": _smaller,
    "gauge_mostrecent": _newer,
}


@contextmanager
def locked(directory: str, *, exclusive: bool = False) -> Iterator[None]:
    """Hold the directory's lock: shared (scrapes, any number at once) or exclusive (compaction)."""
    with open(os.path.join(directory, _LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def compact(pid: int, directory: str) -> int:
    """Fold the files of the dead process ``pid`` into ``directory``'s archive files; returns files removed.

    Call it only once ``pid`` has exited (gunicorn's ``child_exit``): a live process would go on writing to
    a file that is gone.
    """
    suffix = f"_{pid}.db"
    removed = 0
    with locked(directory, exclusive=True):
        for path in glob.glob(os.path.join(directory, f"*{suffix}")):
            kind = os.path.basename(path)[: -len(suffix)]
            merge = _MERGES.get(kind)
            if merge is not None:
                archive = MmapedDict(os.path.join(directory, f"{kind}_{ARCHIVE}.db"))  # type: ignore[no-untyped-call]
                try:
                    kept = {key: (old, old_stamp) for key, old, old_stamp in archive.read_all_values()}  # type: ignore[no-untyped-call]
                    for key, value, stamp, _ in MmapedDict.read_all_values_from_file(path):  # type: ignore[no-untyped-call]
                        merged = merge(value, stamp, *kept[key]) if key in kept else (value, stamp)
                        archive.write_value(key, *merged)  # type: ignore[no-untyped-call]
                finally:
                    archive.close()  # type: ignore[no-untyped-call]
            os.remove(path)
            removed += 1
    return removed
