"""HTTPClient's instrumentation hooks against a real local server: retries, call ends, outcomes, broken hooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared_core.clients import HTTPClient, HTTPConnectionError, HTTPDeadlineExceeded, HTTPStatusError
from shared_core.instrumentation import CallDetails, RetryDetails, get_hooks, set_hooks
from shared_core.testing import Reply, set_testing


class Recorder:
    def __init__(self) -> None:
        self.retries: list[RetryDetails] = []
        self.calls: list[CallDetails] = []

    def on_retry(self, details: RetryDetails) -> None:
        self.retries.append(details)

    def on_call_end(self, details: CallDetails) -> None:
        self.calls.append(details)


class Broken:
    def on_retry(self, details: RetryDetails) -> None:
        raise RuntimeError("a bug in a hook")

    def on_call_end(self, details: CallDetails) -> None:
        raise RuntimeError("a bug in a hook")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    set_testing(True)
    recorder, installed = Recorder(), get_hooks()
    set_hooks([recorder])
    yield recorder
    set_hooks(installed)
    set_testing(False)


def test_two_503s_then_success_are_two_retries_and_one_call_of_three_attempts(recorder, upstream):
    """A call answered 503, 503, 200 reports two retries, then one call: ok, 200, three attempts."""
    upstream.script("/x/", Reply(503), Reply(503), Reply(200, b"{}"))
    HTTPClient(upstream.url, token="t").get("/x/?secret=1")
    host = upstream.url.split("//", 1)[1]
    assert [(r.upstream, r.method, r.path, r.retry, r.cause) for r in recorder.retries] == [
        (host, "GET", "/x/", 1, "status 503"),
        (host, "GET", "/x/", 2, "status 503"),
    ]
    (call,) = recorder.calls
    assert (call.upstream, call.path, call.outcome, call.status, call.attempts) == (host, "/x/", "ok", 200, 3)
    assert call.seconds > 0


@pytest.mark.parametrize(
    ("reply", "outcome", "status", "error"),
    [
        (Reply(404, b"{}"), "error_status", 404, HTTPStatusError),
        (Reply(drop=True), "connection_error", None, HTTPConnectionError),
        (Reply(delay=5), "deadline_exceeded", None, HTTPDeadlineExceeded),
    ],
)
def test_each_way_a_call_ends_is_reported_once(recorder, upstream, reply, outcome, status, error):
    """A 4xx, a broken connection and a spent deadline each end one call with their outcome."""
    upstream.script("/x/", reply)
    with pytest.raises(error):
        HTTPClient(upstream.url, token="t", retries=0, deadline=0.5).post_json("/x/", {})
    (call,) = recorder.calls
    assert (call.outcome, call.status, call.attempts) == (outcome, status, 1)


def test_a_failing_hook_never_breaks_the_call(recorder, upstream):
    """A hook that raises is skipped; the call succeeds and the other hooks still see it."""
    set_hooks([Broken(), recorder])
    upstream.script("/x/", Reply(503), Reply(200, b"{}"))
    assert HTTPClient(upstream.url, token="t").get("/x/").status_code == 200
    assert len(recorder.retries) == 1 and len(recorder.calls) == 1
    assert len(get_hooks()) == 2
