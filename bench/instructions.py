"""Instructions per request, counted by Valgrind's callgrind: the throughput benchmark's read, in process.

On a shared VM the same wrk round moves by 10 to 30% from one few seconds to the next, and the speed of
the host's core with it; the number of instructions a request executes does not. This runs
bench/profiling.py's three handlers (everything on, metrics and tracing off, no shared_core middleware)
in one Python process under callgrind, ``PASSES`` times each, and reads the instructions of each batch of
``REQUESTS`` from callgrind's dumps: the process calls ``os.getsid`` (which nothing else in it calls) at
each batch's end, and callgrind dumps and zeroes its counters on entering ``getsid``.

Counted are the user-space instructions of the process: Python, Django, SQLite and shared_core. The
kernel's share (a request opens the SQLite file: ``CONN_MAX_AGE=0``) is not, and it is the same for all
three, so leaving it out makes the ratios lower, never higher. Instructions are not time: a cache miss
costs more than an addition. They are what the code asks of the processor, the same within 0.02% from
one pass to the next, which is what the wall-clock ratio cannot be here.

Run as ``python -m bench.instructions <sqlite path>``; prints JSON. Needs ``valgrind``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.profiling import CONFIGURATIONS, read_handlers

REQUESTS = 200
PASSES = 2
WARM_UP = 100
#: The libc function whose entry makes callgrind dump; the child calls it between batches.
MARK = "getsid"


def _child(database: str) -> None:
    """Under callgrind: warm every handler, then serve each batch and mark its end."""
    with tempfile.TemporaryDirectory() as metrics_dir:
        handlers, serve = read_handlers(database, metrics_dir)
        for handler in handlers.values():
            serve(handler, WARM_UP)
        os.getsid(0)  # the first dump: start-up and warm-up, not read
        for _ in range(PASSES):
            for handler in handlers.values():
                serve(handler, REQUESTS)
                os.getsid(0)


def count(database: str) -> dict:
    """Run ``_child`` under callgrind and read each batch's instructions per request from its dumps."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--dump-before={MARK}",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                "-m",
                "bench.instructions",
                "--child",
                database,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            cwd=Path(__file__).resolve().parents[1],
        )
        dumps = sorted(Path(out).glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
        batches = [_instructions(path) / REQUESTS for path in dumps[1:]]
    expected = PASSES * len(CONFIGURATIONS)
    if len(batches) != expected:
        raise RuntimeError(f"callgrind wrote {len(batches)} batch dumps, expected {expected}: was {MARK} called?")
    per_request = {name: batches[i :: len(CONFIGURATIONS)] for i, name in enumerate(CONFIGURATIONS)}
    median = {name: statistics.median(values) for name, values in per_request.items()}
    return {
        "requests_per_batch": REQUESTS,
        "instructions_per_request": {name: [round(v) for v in values] for name, values in per_request.items()},
        "pass_to_pass": max(abs(v[-1] - v[0]) / v[0] for v in per_request.values()),
        # As throughput ratios: fewer instructions per request is more requests per second.
        "everything_vs_bare": median["bare"] / median["everything"],
        "everything_vs_quiet": median["quiet"] / median["everything"],
    }


def _instructions(dump: Path) -> int:
    """The ``summary:`` line of a callgrind dump: its instruction count."""
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} has no summary line")


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        print(json.dumps(count(sys.argv[1])))
