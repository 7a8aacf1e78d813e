"""What one sick upstream may cost its callers: a bulkhead, a circuit breaker and a retry budget per upstream.

Each process keeps one ``Guard`` per upstream and policy (``guard_for``), shared by every
HTTPClient of that upstream and all their threads. HTTPClient asks it before each call
(``admit``), tells it how the call ended (``release``) and asks it before each retry
(``may_retry``). The guard imports nothing of HTTP: its clock is injected, so every state and
transition is testable without sleeping.

- **Bulkhead.** At most ``max_concurrent`` calls to the upstream at once, so a hung upstream holds
  at most that many of the process's threads. One more waits up to ``bulkhead_wait_seconds`` for a
  permit (a healthy burst is queued for milliseconds, not turned away), and is refused
  (``Rejected("bulkhead_full")``) when the wait ends, or at once when the oldest call holding a permit
  has already run ``bulkhead_wait_seconds``: a hang keeps no thread waiting for it.
- **Circuit breaker** (resilience4j's model, over a time-based window). Closed, it counts calls,
  failures (timeouts, connection errors, 5xx) and slow calls over the last ``window_seconds``; once
  at least ``minimum_calls`` ended and the failure rate reaches ``failure_rate`` or the slow-call rate
  reaches ``slow_call_rate``, it opens. Open, every call is refused (``Rejected("circuit_open")``)
  for ``open_seconds``. Then half-open: ``half_open_calls`` probe calls go through; all of them
  ending well closes it, any of them failing (or slow) opens it again.
  Beyond resilience4j: a call the bulkhead refuses while a permit is held by a call already
  slower than ``slow_call_seconds`` counts as a slow call. A hung upstream is then seen while it
  hangs, from the callers it turns away, not only when the stuck calls give up at their deadline.
- **Retry budget** (Finagle's ``RetryBudget``). Retries in the last ``window_seconds`` may be at most
  ``retry_ratio`` of the first attempts plus ``retry_min_per_second`` per second of the window: a
  full outage adds at most that share of load, however many retries each call is allowed.
- **Deadline-aware admission.** The guard keeps a moving average of how long a successful call
  takes (``typical_seconds``); HTTPClient starts no attempt whose deadline leaves less than that.

State is per process: each gunicorn worker learns on its own, within ``minimum_calls`` calls,
that an upstream is sick. Sharing it across processes would need a store that is itself one
more thing to fail, for a gain of a few calls per worker.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from shared_core.instrumentation import CircuitDetails, CircuitState

__all__ = [
    "DEFAULT_RESILIENCE",
    "STATES",
    "Guard",
    "Permit",
    "Rejected",
    "Resilience",
    "State",
    "Transition",
    "guard_for",
    "reset_resilience",
]

logger = logging.getLogger("shared_core.clients")

State = CircuitState
#: The breaker's states, in the order of the state gauge's values (0 closed, 1 half-open, 2 open).
STATES: Final[tuple[State, ...]] = ("closed", "half_open", "open")
Transition = CircuitDetails

#: Share of failed calls in the window that opens the circuit; ``HTTP_CLIENT_FAILURE_RATE``.
DEFAULT_FAILURE_RATE: Final = 0.5
#: Share of slow calls in the window that opens the circuit; ``HTTP_CLIENT_SLOW_CALL_RATE``.
DEFAULT_SLOW_CALL_RATE: Final = 0.8
#: A call that takes this many seconds or more is slow; ``HTTP_CLIENT_SLOW_CALL_SECONDS``.
DEFAULT_SLOW_CALL_SECONDS: Final = 2.0
#: Seconds of calls the breaker and the retry budget look back over; ``HTTP_CLIENT_WINDOW_SECONDS``.
DEFAULT_WINDOW_SECONDS: Final = 10.0
#: Calls that must have ended in the window before the breaker judges a rate; ``HTTP_CLIENT_MINIMUM_CALLS``.
DEFAULT_MINIMUM_CALLS: Final = 10
#: Seconds an open circuit refuses every call before it lets probes through; ``HTTP_CLIENT_OPEN_SECONDS``.
DEFAULT_OPEN_SECONDS: Final = 5.0
#: Probe calls a half-open circuit lets through; ``HTTP_CLIENT_HALF_OPEN_CALLS``.
DEFAULT_HALF_OPEN_CALLS: Final = 3
#: Retries may be this share of first attempts; ``HTTP_CLIENT_RETRY_RATIO``.
DEFAULT_RETRY_RATIO: Final = 0.2
#: Retries allowed per second of the window whatever the ratio says; ``HTTP_CLIENT_RETRY_MIN_PER_SECOND``.
DEFAULT_RETRY_MIN_PER_SECOND: Final = 0.5
#: Seconds a call over the bulkhead's bound may wait for a permit; ``HTTP_CLIENT_BULKHEAD_WAIT_SECONDS``.
DEFAULT_BULKHEAD_WAIT_SECONDS: Final = 0.1
#: Seconds a caller turned away by a full bulkhead, or by a half-open circuit's busy probes, is told to wait.
DEFAULT_BUSY_RETRY_AFTER: Final = 1.0
#: Weight of the newest successful call in ``typical_seconds``.
_TYPICAL_WEIGHT: Final = 0.2

Clock = Callable[[], float]


@dataclass(frozen=True)
class Resilience:
    """How HTTPClient protects its caller from one upstream (see the module's docstring for each part).

    ``max_concurrent``: calls at once to the upstream from this process; ``None``: no bulkhead.
    ``bulkhead_wait_seconds``: how long a call over that bound may wait for a permit; ``0``: refused at once.
    ``circuit_breaker`` / ``retry_budget``: ``False`` turns that part off. Rates are shares in
    (0, 1]; seconds are positive. ``service_settings()`` builds one per upstream from the
    ``HTTP_CLIENT_*`` and ``<NAME>_*`` variables. ``ValueError`` names a field out of range.
    """

    max_concurrent: int | None = None
    bulkhead_wait_seconds: float = DEFAULT_BULKHEAD_WAIT_SECONDS
    circuit_breaker: bool = True
    failure_rate: float = DEFAULT_FAILURE_RATE
    slow_call_rate: float = DEFAULT_SLOW_CALL_RATE
    slow_call_seconds: float = DEFAULT_SLOW_CALL_SECONDS
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    minimum_calls: int = DEFAULT_MINIMUM_CALLS
    open_seconds: float = DEFAULT_OPEN_SECONDS
    half_open_calls: int = DEFAULT_HALF_OPEN_CALLS
    retry_budget: bool = True
    retry_ratio: float = DEFAULT_RETRY_RATIO
    retry_min_per_second: float = DEFAULT_RETRY_MIN_PER_SECOND

    def __post_init__(self) -> None:
        for name in ("failure_rate", "slow_call_rate"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"Resilience.{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("slow_call_seconds", "window_seconds", "open_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Resilience.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("minimum_calls", "half_open_calls"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"Resilience.{name} must be at least 1, got {getattr(self, name)!r}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(f"Resilience.max_concurrent must be at least 1 or None, got {self.max_concurrent!r}")
        for name in ("bulkhead_wait_seconds", "retry_ratio", "retry_min_per_second"):
            if getattr(self, name) < 0:
                raise ValueError(f"Resilience.{name} must be >= 0, got {getattr(self, name)!r}")


#: The policy of a client that names none (outside Django, or without ``HTTP_CLIENT_RESILIENCE``).
DEFAULT_RESILIENCE: Final = Resilience()


class Rejected(Exception):
    """A call the guard did not let through. ``reason``: ``circuit_open`` or ``bulkhead_full``;
    ``retry_after``: seconds until a call may be let through again (at least 0)."""

    def __init__(self, reason: Literal["circuit_open", "bulkhead_full"], retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = max(retry_after, 0.0)


@dataclass(frozen=True)
class Permit:
    """One call let through: when it started, and whether it is a half-open circuit's probe."""

    number: int
    started: float
    probe: bool


class _Counts:
    """Counters over the last ``seconds`` seconds, in one-second buckets (a time-based sliding window)."""

    def __init__(self, seconds: float, width: int, clock: Clock) -> None:
        self._size = max(1, math.ceil(seconds))
        self._clock = clock
        self._width = width
        self._buckets: list[list[int]] = [[-1] + [0] * width for _ in range(self._size)]

    def add(self, *values: int) -> None:
        second = int(self._clock())
        bucket = self._buckets[second % self._size]
        if bucket[0] != second:
            bucket[:] = [second] + [0] * self._width
        for i, value in enumerate(values, start=1):
            bucket[i] += value

    def totals(self) -> list[int]:
        second = int(self._clock())
        sums = [0] * self._width
        for bucket in self._buckets:
            if 0 <= second - bucket[0] < self._size:
                for i in range(self._width):
                    sums[i] += bucket[i + 1]
        return sums

    def clear(self) -> None:
        for bucket in self._buckets:
            bucket[:] = [-1] + [0] * self._width


class Guard:
    """The bulkhead, breaker, retry budget and typical call time of one upstream in this process.

    Thread-safe. ``listener`` hears every transition of the breaker, after it happened and
    outside the guard's lock; each is also logged once, as a warning (an opening) or info.
    """

    def __init__(
        self,
        upstream: str,
        policy: Resilience,
        *,
        clock: Clock = time.monotonic,
        listener: Callable[[Transition], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.policy = policy
        self._clock = clock
        self._listener = listener
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._numbers = itertools.count()
        self._in_flight: dict[int, float] = {}
        self._calls = _Counts(policy.window_seconds, 3, clock)  # ended calls, failures, slow calls
        self._budget = _Counts(policy.window_seconds, 2, clock)  # first attempts, retries
        self._state: State = "closed"
        self._open_until = 0.0
        self._probes_started = 0
        self._probes_passed = 0
        self.typical_seconds: float | None = None

    @property
    def state(self) -> State:
        """The breaker's state now (an open circuit whose wait is over reads as half-open)."""
        with self._lock:
            moved = self._advance(self._clock())
        self._announce(moved)
        return self._state

    @property
    def in_flight(self) -> int:
        """Calls let through that have not ended yet."""
        with self._lock:
            return len(self._in_flight)

    def admit(self, wait: float | None = None) -> Permit:
        """Let one call through, or raise ``Rejected``: circuit open, or bulkhead full.

        ``wait``: the most seconds this caller may wait for a bulkhead permit (its deadline's
        remaining time); the policy's ``bulkhead_wait_seconds`` bounds it. ``None``: that bound alone.
        """
        policy = self.policy
        wait = policy.bulkhead_wait_seconds if wait is None else min(wait, policy.bulkhead_wait_seconds)
        moved: list[Transition] = []
        try:
            with self._lock:
                now = self._clock()
                self._refuse_if_open(now, moved)
                bound = policy.max_concurrent
                if bound is not None and len(self._in_flight) >= bound:
                    if wait > 0 and not self._held_for(now, policy.bulkhead_wait_seconds):
                        # Real time, not the injected clock: this blocks a thread until a permit is freed.
                        self._freed.wait_for(lambda: len(self._in_flight) < bound, timeout=wait)
                        now = self._clock()
                        self._refuse_if_open(now, moved)
                    if len(self._in_flight) >= bound:
                        slow = self._held_for(now, policy.slow_call_seconds)
                        if policy.circuit_breaker and self._state == "closed" and slow:
                            self._calls.add(1, 0, 1)  # turned away by calls that are already slow: a slow call
                            moved += self._judge(now)
                        raise Rejected("bulkhead_full", DEFAULT_BUSY_RETRY_AFTER)
                probe = self._state == "half_open"
                self._probes_started += probe
                permit = Permit(next(self._numbers), now, probe)
                self._in_flight[permit.number] = now
                if policy.retry_budget:
                    self._budget.add(1, 0)
                return permit
        finally:
            self._announce(moved)

    def _refuse_if_open(self, now: float, moved: list[Transition]) -> None:
        """Raise ``Rejected("circuit_open")`` if the breaker lets no call through now."""
        if not self.policy.circuit_breaker:
            return
        moved += self._advance(now)
        if self._state == "open":
            raise Rejected("circuit_open", self._open_until - now)
        if self._state == "half_open" and self._probes_started >= self.policy.half_open_calls:
            raise Rejected("circuit_open", DEFAULT_BUSY_RETRY_AFTER)

    def _held_for(self, now: float, seconds: float) -> bool:
        """Whether the oldest call holding a permit has run ``seconds`` or more."""
        return bool(self._in_flight) and now - min(self._in_flight.values()) >= seconds

    def release(self, permit: Permit, *, failed: bool, first_try: bool = True) -> None:
        """The call ``permit`` let through ended: ``failed`` for a timeout, connection error or 5xx.

        ``first_try``: it succeeded without a retry, so its time counts in ``typical_seconds``.
        """
        moved: list[Transition] = []
        with self._lock:
            now = self._clock()
            self._in_flight.pop(permit.number, None)
            self._freed.notify()
            seconds = now - permit.started
            if not failed and first_try:
                typical = self.typical_seconds
                self.typical_seconds = seconds if typical is None else typical + _TYPICAL_WEIGHT * (seconds - typical)
            if self.policy.circuit_breaker:
                slow = seconds >= self.policy.slow_call_seconds
                if permit.probe:
                    moved += self._probe_ended(now, failed or slow)
                elif self._state == "closed":
                    self._calls.add(1, int(failed), int(slow))
                    moved += self._judge(now)
        self._announce(moved)

    def may_retry(self) -> bool:
        """Whether the retry budget has room for one more retry now; if so, it is counted."""
        if not self.policy.retry_budget:
            return True
        with self._lock:
            first, retries = self._budget.totals()
            allowed = self.policy.retry_ratio * first + self.policy.retry_min_per_second * self.policy.window_seconds
            if retries + 1 > allowed:
                return False
            self._budget.add(0, 1)
            return True

    def _advance(self, now: float) -> list[Transition]:
        if self._state == "open" and now >= self._open_until:
            return [self._move("half_open", f"{self.policy.open_seconds:g} s open; letting probes through")]
        return []

    def _judge(self, now: float) -> list[Transition]:
        calls, failures, slow = self._calls.totals()
        if calls < self.policy.minimum_calls:
            return []
        if failures / calls >= self.policy.failure_rate:
            return [self._open(now, f"{failures} of the last {calls} calls failed")]
        if slow / calls >= self.policy.slow_call_rate:
            limit = self.policy.slow_call_seconds
            return [self._open(now, f"{slow} of the last {calls} calls took {limit:g} s or more")]
        return []

    def _probe_ended(self, now: float, bad: bool) -> list[Transition]:
        if self._state != "half_open":
            return []  # the circuit moved on while this probe ran
        if bad:
            return [self._open(now, "a probe call failed")]
        self._probes_passed += 1
        if self._probes_passed >= self.policy.half_open_calls:
            return [self._move("closed", f"{self._probes_passed} probe calls succeeded")]
        return []

    def _open(self, now: float, reason: str) -> Transition:
        self._open_until = now + self.policy.open_seconds
        # Half-open is announced when the wait is over, even if no call comes to this process to see it:
        # an idle worker's state gauge must not read "open" for ever after an outage.
        timer = threading.Timer(self.policy.open_seconds, lambda: self.state)
        timer.daemon = True
        timer.start()
        return self._move("open", reason)

    def _move(self, after: State, reason: str) -> Transition:
        before, self._state = self._state, after
        self._probes_started = self._probes_passed = 0
        self._calls.clear()
        return Transition(self.upstream, before, after, reason)

    def _announce(self, moved: list[Transition]) -> None:
        for transition in moved:
            level = logging.WARNING if transition.after == "open" else logging.INFO
            logger.log(
                level,
                "circuit to %s %s -> %s: %s",
                transition.upstream, transition.before, transition.after, transition.reason,
            )  # fmt: skip
            if self._listener is not None:
                try:
                    self._listener(transition)
                except Exception:
                    logger.exception("a circuit listener failed for %s", transition.upstream)


_guards: dict[tuple[str, Resilience], Guard] = {}
_guards_lock = threading.Lock()


def guard_for(
    base_url: str, upstream: str, policy: Resilience, listener: Callable[[Transition], None] | None = None
) -> Guard:
    """This process's guard of the upstream at ``base_url`` under ``policy``: made on first use, then shared.

    ``upstream`` names it in logs and metrics (``host:port``); two base URLs on one host
    (``http://gateway/users``, ``http://gateway/files``) are two upstreams, each with its own guard.
    """
    key = (base_url, policy)
    with _guards_lock:
        guard = _guards.get(key)
        if guard is None:
            guard = _guards[key] = Guard(upstream, policy, listener=listener)
        return guard


def reset_resilience() -> None:
    """Close every upstream's circuit and empty its windows and retry budget, as in a fresh process.

    The pytest plugin does this before each test, so one test's failing calls never open a circuit
    for the next.
    """
    with _guards_lock:
        _guards.clear()
