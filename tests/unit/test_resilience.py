"""The bulkhead, circuit breaker and retry budget of one upstream, as state machines on an injected clock."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from shared_core._client.resilience import Guard, Permit, Rejected, Resilience, Transition
from shared_core.pytest_plugin import eventually

POLICY = Resilience(
    max_concurrent=2,
    bulkhead_wait_seconds=0,
    failure_rate=0.5,
    slow_call_rate=0.8,
    slow_call_seconds=2.0,
    window_seconds=10,
    minimum_calls=4,
    open_seconds=5.0,
    half_open_calls=2,
    retry_ratio=0.2,
    retry_min_per_second=0.1,
)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def moves() -> list[Transition]:
    return []


@pytest.fixture
def guard(clock: Clock, moves: list[Transition]) -> Guard:
    return Guard("user-service:8000", POLICY, clock=clock, listener=moves.append)


def call(guard: Guard, clock: Clock, *, failed: bool = False, seconds: float = 0.01) -> None:
    permit = guard.admit()
    clock.advance(seconds)
    guard.release(permit, failed=failed)


def open_circuit(guard: Guard, clock: Clock) -> None:
    for _ in range(POLICY.minimum_calls):
        call(guard, clock, failed=True)
    assert guard.state == "open"


def test_closed_circuit_lets_calls_through_and_stays_closed_under_successes(guard, clock, moves):
    """Successful calls keep the circuit closed and announce nothing."""
    for _ in range(50):
        call(guard, clock)
    assert guard.state == "closed" and moves == []


def test_failure_rate_at_the_threshold_opens_the_circuit_once_minimum_calls_ended(guard, clock, moves):
    """Two failures of four ended calls (50%) open it; fewer than the minimum never do."""
    call(guard, clock, failed=True)
    call(guard, clock, failed=True)
    call(guard, clock)
    assert guard.state == "closed"  # 3 calls < minimum_calls, whatever the rate
    call(guard, clock)
    assert guard.state == "open"
    assert [(m.before, m.after) for m in moves] == [("closed", "open")]
    assert moves[0].reason == "2 of the last 4 calls failed"


def test_failures_below_the_rate_keep_it_closed(guard, clock):
    """One failure in four calls (25%) is under the 50% threshold."""
    for failed in (True, False, False, False, False, False):
        call(guard, clock, failed=failed)
    assert guard.state == "closed"


def test_slow_calls_open_the_circuit(guard, clock, moves):
    """Calls that succeed but take slow_call_seconds or more open it at the slow-call rate."""
    for _ in range(4):
        call(guard, clock, seconds=2.5)
    assert guard.state == "open" and "took 2 s or more" in moves[0].reason


def test_old_failures_leave_the_window(guard, clock):
    """Failures older than the window no longer count."""
    for _ in range(3):
        call(guard, clock, failed=True)
    clock.advance(POLICY.window_seconds + 1)
    call(guard, clock, failed=True)
    for _ in range(3):
        call(guard, clock)
    assert guard.state == "closed"


def test_open_circuit_refuses_with_the_time_left_then_half_opens(guard, clock, moves):
    """Open, a call is refused with Retry-After = the wait left; after the wait it lets a probe through."""
    open_circuit(guard, clock)
    clock.advance(1.5)
    with pytest.raises(Rejected) as refused:
        guard.admit()
    assert refused.value.reason == "circuit_open"
    assert refused.value.retry_after == pytest.approx(POLICY.open_seconds - 1.5)
    clock.advance(POLICY.open_seconds)
    assert guard.admit().probe
    assert [m.after for m in moves] == ["open", "half_open"]


def test_an_idle_open_circuit_announces_half_open_when_its_wait_is_over(moves):
    """With no call coming, the open -> half_open transition is still heard once open_seconds passed (real clock)."""
    guard = Guard("u", dataclasses.replace(POLICY, open_seconds=0.05), listener=moves.append)
    for _ in range(POLICY.minimum_calls):
        guard.release(guard.admit(), failed=True)
    eventually(lambda: [m.after for m in moves] == ["open", "half_open"], 10, "half_open announced", lambda: moves)


def test_half_open_admits_only_the_probes(guard, clock):
    """A half-open circuit lets half_open_calls probes through and refuses the rest until they end."""
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    probes = [guard.admit() for _ in range(POLICY.half_open_calls)]
    assert all(p.probe for p in probes)
    with pytest.raises(Rejected, match="circuit_open"):
        guard.admit()


def test_successful_probes_close_the_circuit(guard, clock, moves):
    """Every probe ending well closes the circuit, with an empty window."""
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    for _ in range(POLICY.half_open_calls):
        call(guard, clock)
    assert guard.state == "closed"
    assert [m.after for m in moves] == ["open", "half_open", "closed"]
    call(guard, clock, failed=True)  # a single failure after closing does not reopen it
    assert guard.state == "closed"


def test_a_failed_probe_opens_the_circuit_again_for_a_full_wait(guard, clock, moves):
    """One failing probe reopens the circuit, and the wait starts over."""
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    call(guard, clock, failed=True)
    assert guard.state == "open"
    with pytest.raises(Rejected) as refused:
        guard.admit()
    assert refused.value.retry_after == pytest.approx(POLICY.open_seconds)
    assert [m.after for m in moves] == ["open", "half_open", "open"]


def test_a_slow_probe_counts_as_failed(guard, clock):
    """A probe that succeeds but slowly reopens the circuit."""
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    call(guard, clock, seconds=3)
    assert guard.state == "open"


def test_a_probe_ending_after_the_circuit_moved_on_changes_nothing(guard, clock):
    """A late probe's success does not close a circuit that another probe already reopened."""
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    late, failing = guard.admit(), guard.admit()
    guard.release(failing, failed=True)
    guard.release(late, failed=False)
    assert guard.state == "open"


def test_bulkhead_refuses_the_call_over_the_bound_at_once(guard, clock):
    """With max_concurrent calls in flight the next is refused (Retry-After 1); one ending frees a place."""
    first, _second = guard.admit(), guard.admit()
    with pytest.raises(Rejected) as refused:
        guard.admit()
    assert refused.value.reason == "bulkhead_full" and refused.value.retry_after == 1
    assert guard.in_flight == 2
    guard.release(first, failed=False)
    guard.admit()


def test_a_full_bulkhead_of_fast_calls_does_not_count_against_the_upstream(guard, clock):
    """Refusals while the calls in flight are young are a burst, not a sick upstream: the circuit stays closed."""
    guard.admit(), guard.admit()
    for _ in range(20):
        with pytest.raises(Rejected):
            guard.admit()
    assert guard.state == "closed"


def test_a_bulkhead_held_by_slow_calls_opens_the_circuit_while_they_hang(guard, clock, moves):
    """Refusals while every permit is held past slow_call_seconds count as slow calls, so a hang opens it."""
    guard.admit(), guard.admit()
    clock.advance(POLICY.slow_call_seconds)
    for _ in range(POLICY.minimum_calls):
        with pytest.raises(Rejected):
            guard.admit()
    assert guard.state == "open" and "took 2 s or more" in moves[0].reason
    with pytest.raises(Rejected, match="circuit_open"):
        guard.admit()


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Start ``work`` in a thread; the list receives what it returned or raised."""
    ended: list[object] = []

    def run() -> None:
        try:
            ended.append(work())
        except Rejected as exc:
            ended.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, ended


WAITING = dataclasses.replace(POLICY, max_concurrent=1, bulkhead_wait_seconds=60)


def test_a_call_over_the_bound_waits_for_a_permit_freed_in_time(clock):
    """A call over the bound waits (up to bulkhead_wait_seconds) and gets the permit a finished call frees."""
    guard = Guard("u", WAITING, clock=clock)
    holder = guard.admit()
    waiter, ended = in_thread(guard.admit)
    waiter.join(timeout=0.2)
    assert waiter.is_alive() and ended == []  # waiting, not refused
    guard.release(holder, failed=False)
    waiter.join(timeout=10)
    assert not waiter.is_alive() and isinstance(ended[0], Permit)


def test_the_wait_ends_in_a_refusal_when_no_permit_is_freed(clock):
    """Nobody releasing within bulkhead_wait_seconds: the waiting call is refused bulkhead_full."""
    guard = Guard("u", dataclasses.replace(WAITING, bulkhead_wait_seconds=0.05), clock=clock)
    guard.admit()
    with pytest.raises(Rejected, match="bulkhead_full"):
        guard.admit()


@pytest.mark.parametrize("why", ["the caller's deadline leaves no time", "the oldest holder ran the whole wait"])
def test_a_call_over_the_bound_is_refused_at_once_when_waiting_is_pointless(clock, why):
    """No wait when the caller's deadline is spent, or a call holding a permit has run bulkhead_wait_seconds."""
    guard = Guard("u", WAITING, clock=clock)
    guard.admit()
    if why == "the oldest holder ran the whole wait":
        clock.advance(WAITING.bulkhead_wait_seconds)
        waiter, ended = in_thread(guard.admit)
    else:
        waiter, ended = in_thread(lambda: guard.admit(wait=0))
    waiter.join(timeout=10)  # 60 s of waiting would still be going on
    assert not waiter.is_alive() and isinstance(ended[0], Rejected) and ended[0].reason == "bulkhead_full"


def test_no_bulkhead_when_max_concurrent_is_none(clock):
    """max_concurrent=None lets any number of calls through."""
    guard = Guard("u", Resilience(max_concurrent=None), clock=clock)
    permits = [guard.admit() for _ in range(100)]
    assert len(permits) == 100 and guard.in_flight == 100


def test_circuit_breaker_off_never_opens(clock):
    """circuit_breaker=False counts nothing and never refuses."""
    guard = Guard("u", Resilience(circuit_breaker=False, minimum_calls=1), clock=clock)
    for _ in range(50):
        call(guard, clock, failed=True)
    assert guard.state == "closed"


def test_with_the_breaker_off_a_bulkhead_held_by_slow_calls_only_refuses(clock, moves):
    """circuit_breaker=False keeps the bulkhead: slow holders make it refuse, but no circuit ever opens."""
    guard = Guard("u", Resilience(max_concurrent=1, circuit_breaker=False, minimum_calls=1), clock=clock,
                  listener=moves.append)  # fmt: skip
    guard.admit()
    clock.advance(60)
    for _ in range(20):
        with pytest.raises(Rejected, match="bulkhead_full"):
            guard.admit()
    assert guard.state == "closed" and moves == []


def test_retry_budget_is_a_share_of_first_attempts_plus_a_floor(guard, clock):
    """Retries stay under 20% of first attempts plus the floor (0.1/s over 10 s = 1); then they are refused."""
    for _ in range(10):
        guard.release(guard.admit(), failed=False)
    allowed = 0
    while guard.may_retry():
        allowed += 1
    assert allowed == 3  # 0.2 * 10 + 0.1 * 10


def test_retry_budget_refills_as_the_window_moves(guard, clock):
    """Retries spent more than a window ago no longer count."""
    while guard.may_retry():
        pass
    clock.advance(POLICY.window_seconds + 1)
    assert guard.may_retry()


def test_retry_budget_off_always_allows(clock):
    """retry_budget=False never refuses a retry."""
    guard = Guard("u", Resilience(retry_budget=False), clock=clock)
    assert all(guard.may_retry() for _ in range(1000))


def test_typical_seconds_follows_first_try_successes_only(guard, clock):
    """The typical call time moves with successful first tries, not with failures or retried calls."""
    assert guard.typical_seconds is None
    call(guard, clock, seconds=0.1)
    assert guard.typical_seconds == pytest.approx(0.1)
    call(guard, clock, seconds=5, failed=True)
    permit = guard.admit()
    clock.advance(9)
    guard.release(permit, failed=False, first_try=False)
    assert guard.typical_seconds == pytest.approx(0.1)
    call(guard, clock, seconds=0.6)
    assert guard.typical_seconds == pytest.approx(0.2)


def test_a_failing_listener_does_not_break_the_guard(clock, caplog):
    """A listener that raises is logged; the transition still happens."""

    def broken(_: Transition) -> None:
        raise RuntimeError("boom")

    guard = Guard("u", POLICY, clock=clock, listener=broken)
    open_circuit(guard, clock)
    assert "a circuit listener failed" in caplog.text


def test_each_transition_is_logged_once(guard, clock, caplog):
    """Opening logs one warning naming the upstream and the reason; probes and closing log at info."""
    caplog.set_level("INFO", logger="shared_core.clients")
    open_circuit(guard, clock)
    clock.advance(POLICY.open_seconds)
    for _ in range(POLICY.half_open_calls):
        call(guard, clock)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "circuit to" in r.getMessage()]
    assert lines == [
        ("WARNING", "circuit to user-service:8000 closed -> open: 4 of the last 4 calls failed"),
        ("INFO", "circuit to user-service:8000 open -> half_open: 5 s open; letting probes through"),
        ("INFO", "circuit to user-service:8000 half_open -> closed: 2 probe calls succeeded"),
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_rate", 0),
        ("slow_call_rate", 1.5),
        ("open_seconds", 0),
        ("minimum_calls", 0),
        ("half_open_calls", 0),
        ("max_concurrent", 0),
        ("retry_ratio", -0.1),
        ("bulkhead_wait_seconds", -1),
    ],
)
def test_a_policy_out_of_range_names_its_field(field, value):
    """Resilience refuses a value out of range with a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        Resilience(**{field: value})
