"""The soak's fault injector: real faults through the Docker API, one at a time, each healed before the next."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from docker.models.containers import Container

from devstack import SERVICES
from tests.integration.conftest import API_PATHS

#: The services whose containers take faults (the edge proxy and the test-only ones do not).
#: Seconds between two faults: uniform in this range, after the previous one healed.
PAUSE_BETWEEN = (3.0, 7.0)
#: Seconds a paused container stays paused.
PAUSED_FOR = (0.5, 3.0)
#: Seconds a hung service stays hung: past the callers' deadline and their circuit's thresholds.
HUNG_FOR = (6.0, 10.0)
#: Seconds a partitioned service stays cut off from the stack's network (its callers' packets go nowhere).
PARTITIONED_FOR = (3.0, 8.0)


#: Seconds a bystander probe may take to be answered while a neighbour hangs: generous, far below the hang.
PROBE_TIMEOUT = 5.0


@dataclass
class Outage:
    """A service ``hung`` (paused) or ``partitioned`` (cut off from the network) from ``start`` to ``end``
    (monotonic seconds, as the workload's ops), and what the other services' list endpoints answered
    meanwhile: ``(service, status)``, status ``None`` for no answer."""

    service: str
    kind: str
    start: float
    end: float = 0.0
    probes: list[tuple[str, int | None]] = field(default_factory=list)


class Faults:
    """A thread that injects seeded random faults into a running stack until ``stop`` is set.

    ``stack`` is the integration suite's ``Stack`` (containers by service, ``wait_healthy``). Each fault
    is one of: gunicorn's workers replaced (SIGHUP to the master), a container paused, a service hung
    (paused for HUNG_FOR seconds: the first fault of every run), a service partitioned (disconnected from
    the stack's network for PARTITIONED_FOR seconds, then reconnected: the second fault of every run), a
    service stopped and started, a service or an outbox worker killed (SIGKILL, mid-request or mid-task)
    and started, PostgreSQL restarted. ``injected`` counts them by kind; ``outages`` holds when each hang
    and partition lasted, and what the other services answered meanwhile.
    """

    def __init__(self, stack: Any, seed: int, *, postgres: bool) -> None:
        self.stack, self.rng = stack, random.Random(f"{seed}-faults")
        self.stop = threading.Event()
        self.injected: Counter[str] = Counter()
        self.errors: list[str] = []
        self.outages: list[Outage] = []
        self._kinds: list[tuple[str, Callable[[], None], int]] = [
            ("hang a service", self.hang, 1),
            ("partition a service", self.partition, 1),
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
        first = iter(self._kinds[:2])  # a hang, then a partition, in every run
        while not self.stop.wait(self.rng.uniform(*PAUSE_BETWEEN)):
            name, inject, _ = next(first, None) or self.rng.choices(self._kinds, [w for *_, w in self._kinds])[0]
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

    def hang(self) -> None:
        """Pause a service for HUNG_FOR seconds: connections stay open and nothing answers."""
        self._outage("hung", HUNG_FOR, self.stack.paused)

    def partition(self) -> None:
        """Disconnect a service from the stack's network for PARTITIONED_FOR seconds, then reconnect it."""
        self._outage("partitioned", PARTITIONED_FOR, self.stack.cut_off)

    def _outage(self, kind: str, seconds: tuple[float, float], fault: Callable[[str], Any]) -> None:
        """``fault(service)`` held for ``seconds`` while the other services' lists are read, one after another."""
        outage = Outage(self.rng.choice(SERVICES), kind, time.monotonic())
        until = outage.start + self.rng.uniform(*seconds)
        try:
            with fault(outage.service):
                while time.monotonic() < until:
                    for bystander in (s for s in SERVICES if s != outage.service):
                        outage.probes.append((bystander, self._probe(bystander)))
        finally:
            outage.end = time.monotonic()
            self.outages.append(outage)

    def _probe(self, service: str) -> int | None:
        try:
            return requests.get(
                self.stack.url(service) + API_PATHS[service],
                headers={"Authorization": f"Bearer {self.stack.token}"},
                timeout=PROBE_TIMEOUT,
            ).status_code
        except requests.RequestException:
            return None

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
