"""HTTPClient against a real local HTTP server: retries, timeouts, the deadline, auth, headers."""

import copy
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from devstack import free_port
from shared_core._client.httpclient import DEFAULT_BACKOFF_MAX
from shared_core.clients import (
    HTTPClient,
    HTTPClientError,
    HTTPConnectionError,
    HTTPDeadlineExceeded,
    HTTPDecodeError,
    HTTPStatusError,
    HTTPTimeoutError,
    Resilience,
)
from shared_core.context import DEADLINE_HEADER, REQUEST_ID_HEADER, Deadline, request_context
from shared_core.testing import Reply, Upstream, set_testing

TOKEN = "s3cr3t-token-value"
#: Generous upper bound on how far past its deadline a call may end on a busy 2-core machine.
MARGIN = 1.0


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture(autouse=True)
def no_sleeps() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


def client_for(upstream: Upstream, **kwargs) -> HTTPClient:
    kwargs.setdefault("token", TOKEN)
    kwargs.setdefault("timeout", (1.0, 2.0))
    return HTTPClient(upstream.url, **kwargs)


def test_retries_503_twice_then_succeeds_with_three_attempts(upstream):
    """A GET answered 503, 503, 200 returns the 200 after exactly three attempts."""
    upstream.script("/x", Reply(503), Reply(503), Reply(200, b'{"n": 1}'))
    assert client_for(upstream).get_json("/x") == {"n": 1}
    assert len(upstream.hits("/x")) == 3


def test_endless_503_returns_final_response_and_get_json_raises(upstream):
    """After retries run out the final 503 is returned; get_json raises HTTPStatusError naming the call."""
    upstream.script("/down", Reply(503))
    client = client_for(upstream, retries=2)
    assert client.get("/down").status_code == 503
    assert len(upstream.hits("/down")) == 3
    with pytest.raises(HTTPStatusError) as info:
        client.get_json("/down")
    assert info.value.status_code == 503 and "GET /down" in str(info.value) and "503" in str(info.value)
    assert TOKEN not in str(info.value)


def test_non_retryable_status_is_not_retried(upstream):
    """A 500 or 404 is returned after one attempt."""
    upstream.script("/e", Reply(500))
    assert client_for(upstream).get("/e").status_code == 500
    assert len(upstream.hits("/e")) == 1


def test_post_without_idempotency_key_is_sent_once(upstream):
    """A POST answered 503 or dropped mid-call is not retried without an Idempotency-Key."""
    upstream.script("/p", Reply(503))
    assert client_for(upstream).post("/p", json={}).status_code == 503
    upstream.script("/drop", Reply(drop=True))
    with pytest.raises(HTTPConnectionError):
        client_for(upstream).post("/drop", json={})
    assert len(upstream.hits("/p")) == 1 and len(upstream.hits("/drop")) == 1


def test_post_with_idempotency_key_is_retried_with_the_same_key(upstream):
    """A POST with a generated Idempotency-Key is retried, every attempt carrying the same key."""
    upstream.script("/p", Reply(503), Reply(drop=True), Reply(201, b'{"id": 7}'))
    assert client_for(upstream).post_json("/p", {"a": 1}, idempotency_key=True) == {"id": 7}
    keys = {hit.headers["Idempotency-Key"] for hit in upstream.hits("/p")}
    assert len(upstream.hits("/p")) == 3 and len(keys) == 1 and len(keys.pop()) == 32


def test_patch_with_caller_key_is_retried(upstream):
    """A PATCH whose caller set the Idempotency-Key header is retried."""
    upstream.script("/q", Reply(502), Reply(200))
    response = client_for(upstream).patch("/q", json={}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200 and len(upstream.hits("/q")) == 2


def test_connection_refused_raises_connection_error():
    """A port with nothing listening raises HTTPConnectionError, not a requests exception."""
    client = HTTPClient(f"http://127.0.0.1:{free_port()}", retries=1, token=TOKEN)
    with pytest.raises(HTTPConnectionError) as info:
        client.get("/x")
    assert "GET /x" in str(info.value) and TOKEN not in str(info.value)
    assert isinstance(info.value, HTTPClientError)


def test_read_timeout_raises_timeout_error_within_its_bound(upstream):
    """An upstream slower than the read timeout raises HTTPTimeoutError soon after the timeout."""
    upstream.script("/slow", Reply(delay=3))
    start = time.monotonic()
    with pytest.raises(HTTPTimeoutError) as info:
        client_for(upstream, timeout=0.3, retries=0).get("/slow")
    assert not isinstance(info.value, HTTPDeadlineExceeded)
    assert time.monotonic() - start < 0.3 + MARGIN


def test_deadline_holds_against_a_trickling_body(upstream):
    """A body trickled one byte at a time cannot hold a call past its deadline."""
    upstream.script("/trickle", Reply(body=b"x" * 200, trickle=0.05))
    start = time.monotonic()
    with pytest.raises(HTTPDeadlineExceeded):
        client_for(upstream, timeout=5, deadline=0.6).get("/trickle")
    assert time.monotonic() - start < 0.6 + MARGIN


def test_deadline_holds_against_trickling_headers(upstream):
    """Headers trickled one byte at a time cannot hold a call past its deadline."""
    upstream.script("/trickle", Reply(trickle_headers=0.05))
    start = time.monotonic()
    with pytest.raises(HTTPDeadlineExceeded):
        client_for(upstream, timeout=5, deadline=0.6).get("/trickle")
    assert time.monotonic() - start < 0.6 + MARGIN


def test_deadline_holds_against_an_endless_503_with_real_backoff(upstream):
    """With real backoff sleeps, endless 503s end within the deadline with the last 503, not after all retries."""
    set_testing(False)
    upstream.script("/busy", Reply(503))
    start = time.monotonic()
    response = client_for(upstream, retries=20, backoff_factor=0.2, deadline=1.0).get("/busy")
    assert response.status_code == 503
    assert time.monotonic() - start < 1.0 + MARGIN
    assert 1 < len(upstream.hits("/busy")) < 21


def test_retry_after_is_honoured(upstream):
    """A 503 with Retry-After: 1 is retried no sooner than a second later."""
    set_testing(False)
    upstream.script("/ra", Reply(503, headers={"Retry-After": "1"}), Reply(200))
    assert client_for(upstream, deadline=5).get("/ra").status_code == 200
    first, second = upstream.hits("/ra")
    assert second.at - first.at >= 0.95


def test_huge_retry_after_returns_the_answer_already_received(upstream):
    """A 429 whose Retry-After (six hours) outlasts the deadline is handed to the caller at once, sent once."""
    set_testing(False)
    upstream.script("/ra", Reply(429, headers={"Retry-After": "21600"}))
    start = time.monotonic()
    assert client_for(upstream, deadline=2, retry_after_max=30000).get("/ra").status_code == 429
    assert time.monotonic() - start < 2 + MARGIN
    assert len(upstream.hits("/ra")) == 1


def test_incoming_deadline_caps_outgoing_calls_and_is_propagated(upstream):
    """Inside a request with 0.5 s left, a call with a 10 s deadline sends <= 0.5 s and ends by it."""
    upstream.script("/ok", Reply())
    upstream.script("/slow", Reply(delay=3))
    client = client_for(upstream, deadline=10, timeout=5)
    with request_context("rid-1", Deadline.after(0.5)):
        client.get("/ok")
        start = time.monotonic()
        with pytest.raises(HTTPDeadlineExceeded):
            client.get("/slow")
    assert time.monotonic() - start < 0.5 + MARGIN
    sent = float(upstream.hits("/ok")[0].headers[DEADLINE_HEADER])
    assert 0 < sent <= 0.5


def test_each_attempt_sends_the_budget_left_at_that_moment(upstream):
    """A retried call sends a smaller X-Request-Deadline on each later attempt."""
    set_testing(False)
    upstream.script("/r", Reply(503, headers={"Retry-After": "1"}), Reply(200))
    client_for(upstream, deadline=5).get("/r")
    budgets = [float(hit.headers[DEADLINE_HEADER]) for hit in upstream.hits("/r")]
    assert budgets[0] <= 5 and budgets[1] <= budgets[0] - 0.9


def test_spent_incoming_deadline_fails_before_sending(upstream):
    """A call made after the request's deadline passed raises without reaching the upstream."""
    with request_context("rid", Deadline.after(-1)), pytest.raises(HTTPDeadlineExceeded):
        client_for(upstream).get("/x")
    assert upstream.seen == []


def test_request_id_and_bearer_token_are_sent(upstream):
    """Every call carries the current request id and the bearer token."""
    with request_context("req-42"):
        client_for(upstream).get("/h")
    headers = upstream.hits("/h")[0].headers
    assert headers[REQUEST_ID_HEADER] == "req-42" and headers["Authorization"] == f"Bearer {TOKEN}"


def test_request_is_what_requests_would_send(upstream):
    """Session defaults, caller headers (None drops one), params, JSON and cookies go out as requests sends them."""
    client = client_for(upstream)
    headers = {"X-Extra": "x", "Accept": None}
    client.post("/p", params={"q": "1"}, json={"a": 1}, headers=headers, cookies={"c": "v"})
    hit = upstream.hits("/p")[0]
    assert hit.path == "/p?q=1" and hit.headers["X-Extra"] == "x"
    assert hit.headers["User-Agent"].startswith("python-requests/")
    assert "Accept" not in hit.headers and hit.headers["Cookie"] == "c=v"
    assert hit.headers["Content-Type"] == "application/json" and hit.body == b'{"a": 1}'


def test_token_comes_from_django_settings(upstream, settings):
    """Without a token argument, SERVICE_AUTH_TOKEN is used, then AUTH_TOKEN."""
    HTTPClient(upstream.url).get("/a")
    del settings.SERVICE_AUTH_TOKEN
    settings.AUTH_TOKEN = "fallback-token"
    HTTPClient(upstream.url).get("/b")
    assert upstream.hits("/a")[0].headers["Authorization"] == "Bearer unit-test-service-token"
    assert upstream.hits("/b")[0].headers["Authorization"] == "Bearer fallback-token"


def test_defaults_come_from_django_settings(settings):
    """HTTP_CLIENT_* settings replace the module defaults."""
    settings.HTTP_CLIENT_TIMEOUT = 4
    settings.HTTP_CLIENT_RETRIES = 1
    settings.HTTP_CLIENT_DEADLINE = 9
    client = HTTPClient("http://127.0.0.1:1")
    assert (client.timeout, client.retries, client.deadline) == (4.0, 1, 9)


def test_a_call_leaves_the_callers_arguments_as_they_were(upstream):
    """The headers, params and options a caller passes are read, never changed: one dict serves two calls."""
    upstream.script("/same", Reply(200, b"{}"))
    options = {"headers": {"X-Mine": "1"}, "params": {"q": "a"}, "timeout": (1.0, 2.0), "allow_redirects": False}
    kept = copy.deepcopy(options)
    client = client_for(upstream)
    for _ in range(2):
        assert client.get("/same", idempotency_key=True, **options).status_code == 200
        assert options == kept
    assert [hit.headers["X-Mine"] for hit in upstream.hits("/same")] == ["1", "1"]


def test_a_body_that_cannot_be_encoded_raises_before_the_call_is_admitted(upstream):
    """A json= that is not JSON raises TypeError at once: nothing is sent, and the guard counts no failure."""
    client = client_for(upstream, resilience=Resilience(minimum_calls=1, failure_rate=0.5))
    with pytest.raises(TypeError):
        client.post("/x", json={"at": object()})
    upstream.script("/x", Reply(200, b"{}"))
    assert client.get("/x").status_code == 200  # a failure counted would have opened the circuit
    assert len(upstream.hits("/x")) == 1


def test_token_never_in_repr_errors_or_debug_logs(upstream, caplog):
    """With every logger at DEBUG, the token shows up in no log line, repr or exception text."""
    caplog.set_level(logging.DEBUG)
    upstream.script("/bad", Reply(503))
    client = client_for(upstream, retries=1)
    with pytest.raises(HTTPStatusError) as info:
        client.get_json("/bad")
    with pytest.raises(HTTPConnectionError) as refused:
        HTTPClient(f"http://127.0.0.1:{free_port()}", token=TOKEN, retries=0).get("/r")
    assert "retrying GET /bad after status 503" in caplog.text
    for text in (caplog.text, repr(client), str(info.value), repr(info.value), str(refused.value)):
        assert TOKEN not in text


def test_redirect_to_another_host_drops_the_token(upstream):
    """A redirect to another host:port does not carry the Authorization header."""
    with Upstream() as other:
        upstream.script("/go", Reply(302, b"", headers={"Location": f"{other.url}/landed"}))
        assert client_for(upstream).get("/go").status_code == 200
        assert "Authorization" not in other.hits("/landed")[0].headers


def test_environment_proxies_and_netrc_are_ignored(upstream, monkeypatch, tmp_path, settings):
    """HTTP_PROXY and NETRC in the environment do not affect the client."""
    del settings.SERVICE_AUTH_TOKEN
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login u password leaked\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert HTTPClient(upstream.url).get("/n").status_code == 200
    assert "Authorization" not in upstream.hits("/n")[0].headers


def test_non_json_body_raises_decode_error(upstream):
    """get_json on a 200 whose body is not JSON raises HTTPDecodeError naming the call."""
    upstream.script("/html", Reply(body=b"<html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(HTTPDecodeError, match="GET /html"):
        client_for(upstream).get_json("/html")


def test_bad_arguments_name_what_is_wrong(upstream):
    """Bad base URLs, absolute paths, bad timeouts and stream=True raise clear errors."""
    with pytest.raises(ValueError, match="base_url"):
        HTTPClient("user-service:8000")
    with pytest.raises(ValueError, match="timeout"):
        HTTPClient(upstream.url, timeout=0)
    with pytest.raises(ValueError, match="relative"):
        client_for(upstream).get("http://evil.example/steal")
    with pytest.raises(TypeError, match="stream"):
        client_for(upstream).get("/x", stream=True)


def test_one_client_is_safe_across_threads_and_reuses_connections(upstream):
    """Eight threads sharing one client all succeed over a handful of pooled connections."""
    client = client_for(upstream)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert client.get_json("/t") == {"ok": True}
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    hits = upstream.hits("/t")
    assert len(hits) == 200 and len({h.client_port for h in hits}) <= 16


def test_testing_switch_skips_backoff_sleeps(upstream):
    """With set_testing(True) no backoff is slept; with it off the same script sleeps its backoff."""
    upstream.script("/s", Reply(503), Reply(503), Reply(200))
    start = time.monotonic()
    assert client_for(upstream, backoff_factor=30, deadline=None).get("/s").status_code == 200
    assert time.monotonic() - start < DEFAULT_BACKOFF_MAX / 2  # the capped backoff alone would take 5 s
    set_testing(False)
    upstream.script("/s", Reply(503), Reply(503), Reply(200))
    start = time.monotonic()
    assert client_for(upstream, backoff_factor=0.5, deadline=None).get("/s").status_code == 200
    assert time.monotonic() - start >= 0.95  # 0.5 * 2 s before the second retry: sleeps are really taken


def test_a_settings_change_closes_the_upstream_clients_it_made_stale(upstream, settings):
    """upstream() keeps one client per URL; changing UPSTREAMS closes its pooled connections and makes a new one."""
    from shared_core.clients import upstream as neighbour

    settings.SERVICE_AUTH_TOKEN = TOKEN
    settings.UPSTREAMS = {"neighbour": upstream.url}
    first = neighbour("neighbour")
    assert neighbour("neighbour") is first and first.get("/x").status_code == 200
    pools = first._session.get_adapter(upstream.url).poolmanager.pools
    assert len(pools) == 1  # the kept-alive connection's pool
    settings.UPSTREAMS = {"neighbour": upstream.url, "other": upstream.url}
    assert len(pools) == 0  # closed, not left to the garbage collector
    second = neighbour("neighbour")
    assert second is not first and second.get("/x").status_code == 200
