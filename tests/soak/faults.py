"""The soak's fault injector: real faults through the Docker API, one at a time, each healed before the next."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from docker.models.containers import Container

from devstack import SERVICES

#: The services whose containers take faults (the edge proxy and the test-only ones do not).
#: Seconds between two faults: uniform in this range, after the previous one healed.
PAUSE_BETWEEN = (3.0, 7.0)
#: Seconds a paused container stays paused.
PAUSED_FOR = (0.5, 3.0)


class Faults:
    """A thread that injects seeded random faults into a running stack until ``stop`` is set.

    ``stack`` is the integration suite's ``Stack`` (containers by service, ``wait_healthy``). Each fault
    is one of: gunicorn's workers replaced (SIGHUP to the master), a container paused, a service stopped
    and started, a service or an outbox worker killed (SIGKILL, mid-request or mid-task) and started,
    PostgreSQL restarted.
    ``injected`` counts them by kind.
    """

    def __init__(self, stack: Any, seed: int, *, postgres: bool) -> None:
        self.stack, self.rng = stack, random.Random(f"{seed}-faults")
        self.stop = threading.Event()
        self.injected: Counter[str] = Counter()
        self.errors: list[str] = []
        self._kinds: list[tuple[str, Callable[[], None], int]] = [
            ("replace gunicorn workers", self.replace_workers, 4),
            ("pause a service", self.pause, 3),
            ("stop and start a service", self.stop_start, 2),
            ("kill an outbox worker", self.kill_worker, 2),
            ("kill a service", self.kill_service, 1),
        ]
        if postgres:
            self._kinds.append(("restart PostgreSQL", self.restart_postgres, 1))
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self.stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the fault injector did not stop within {timeout} s")

    def _run(self) -> None:
        while not self.stop.wait(self.rng.uniform(*PAUSE_BETWEEN)):
            name, inject, _ = self.rng.choices(self._kinds, [weight for *_, weight in self._kinds])[0]
            try:
                inject()
                self.injected[name] += 1
                self.stack.wait_healthy()
            except Exception as exc:  # reported by the runner as a violation: the stack did not heal
                self.errors.append(f"fault {name!r}: {type(exc).__name__}: {exc}")
                return

    def _service(self) -> Container:
        return self.stack.container(self.rng.choice(SERVICES))

    def replace_workers(self) -> None:
        self._service().kill(signal="SIGHUP")  # gunicorn starts new workers and retires the old ones

    def pause(self) -> None:
        container = self._service()
        container.pause()
        try:
            time.sleep(self.rng.uniform(*PAUSED_FOR))
        finally:
            container.unpause()

    def stop_start(self) -> None:
        container = self._service()
        container.stop(timeout=30)
        container.start()

    def kill_service(self) -> None:
        container = self._service()
        container.kill()  # SIGKILL: requests in flight get no answer, nothing is flushed
        container.start()

    def kill_worker(self) -> None:
        container = self.rng.choice(self.stack.containers("ticket-worker"))
        container.kill()
        container.start()

    def restart_postgres(self) -> None:
        self.stack.container("postgres").restart(timeout=30)
