"""W3C Trace Context: parsing, propagation through HTTPClient and log lines, and OpenTelemetry's view of it."""

from __future__ import annotations

import logging
import logging.config
import re

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared_core._base.tracing import TraceContext, parse_traceparent, parse_tracestate, trace_context
from shared_core.clients import HTTPClient
from shared_core.logging_config import TEXT_LINE_PATTERN, get_logging_config

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (VALID, (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),
        (f" {VALID}\t", (TRACE, PARENT, "01")),
        (f"cc-{TRACE}-{PARENT}-01-future-field", (TRACE, PARENT, "01")),  # a later version may add fields
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{PARENT}-01", None),  # version ff is forbidden
        (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE.upper()}-{PARENT}-01", None),  # hex must be lowercase
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),
        (f"00-{TRACE}-{PARENT}0-01", None),
        (f"00-{TRACE}-{PARENT}-1", None),
        (f"00_{TRACE}_{PARENT}_01", None),
        ("", None),
        (None, None),
    ],
)
def test_traceparent_is_parsed_strictly(header, parsed):
    """Valid traceparents give (trace id, parent id, flags); malformed and all-zero ones give None."""
    assert parse_traceparent(header) == parsed


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("congo=t61rcWkgMzE", "congo=t61rcWkgMzE"),
        ("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("tenant@vendor=v", "tenant@vendor=v"),
        ("UPPER=v", None),
        ("novalue", None),
        ("a=1,a=2", None),
        (",".join(f"k{i}=v" for i in range(33)), None),
        ("k=" + "v" * 600, None),
        ("", None),
    ],
)
def test_tracestate_is_kept_only_when_well_formed(header, kept):
    """A well-formed tracestate is kept (joined); a malformed, duplicated or oversized one is dropped."""
    assert parse_tracestate(header) == kept


def test_a_valid_header_is_continued_and_a_bad_one_starts_a_new_trace():
    """A valid traceparent keeps its trace with a new span; an invalid one starts a trace and drops tracestate."""
    continued = TraceContext.from_headers(VALID, "congo=t61rcWkgMzE")
    assert (continued.trace_id, continued.parent_id, continued.state) == (TRACE, PARENT, "congo=t61rcWkgMzE")
    assert continued.span_id != PARENT and re.fullmatch(r"[0-9a-f]{16}", continued.span_id)
    fresh = TraceContext.from_headers(f"00-{'0' * 32}-{PARENT}-01", "congo=t61rcWkgMzE")
    assert fresh.trace_id not in (TRACE, "0" * 32) and fresh.state is None and fresh.parent_id is None
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fresh.traceparent)


def test_httpclient_sends_the_trace_with_a_new_parent_per_call(upstream):
    """Each outgoing call carries the trace id, a parent id of its own, and tracestate unchanged."""
    with trace_context(TraceContext.from_headers(VALID, "congo=t61rcWkgMzE")) as current:
        client = HTTPClient(upstream.url, token="t")
        client.get("/a/")
        client.get("/b/")
    sent = [parse_traceparent(hit.headers["traceparent"]) for hit in upstream.seen]
    assert [s[0] for s in sent] == [TRACE, TRACE]
    assert len({s[1] for s in sent} | {current.span_id, PARENT}) == 4
    assert {hit.headers["tracestate"] for hit in upstream.seen} == {"congo=t61rcWkgMzE"}


def test_a_callers_own_traceparent_wins(upstream):
    """A traceparent the caller set (an OpenTelemetry instrumentation, say) is sent as it is."""
    with trace_context():
        HTTPClient(upstream.url, token="t").get("/a/", headers={"Traceparent": VALID})
    assert upstream.seen[0].headers["Traceparent"] == VALID


def test_a_header_made_by_opentelemetry_is_accepted():
    """OpenTelemetry's propagator writes a traceparent that shared_core continues, same trace id."""
    span_context = otel_trace.SpanContext(
        trace_id=int(TRACE, 16), span_id=int(PARENT, 16), is_remote=False,
        trace_flags=otel_trace.TraceFlags(1), trace_state=otel_trace.TraceState([("congo", "t61rcWkgMzE")]),
    )  # fmt: skip
    carrier: dict[str, str] = {}
    span = otel_trace.NonRecordingSpan(span_context)
    TraceContextTextMapPropagator().inject(carrier, otel_trace.set_span_in_context(span))
    ours = TraceContext.from_headers(carrier["traceparent"], carrier.get("tracestate"))
    assert (ours.trace_id, ours.parent_id, ours.flags, ours.state) == (TRACE, PARENT, "01", "congo=t61rcWkgMzE")


def test_the_header_we_send_is_parsed_by_opentelemetry_to_the_same_trace():
    """OpenTelemetry's propagator reads the traceparent shared_core sends: same trace id, our span as parent."""
    ours = TraceContext.from_headers(VALID, "congo=t61rcWkgMzE").child()
    context = TraceContextTextMapPropagator().extract(ours.headers())
    remote = otel_trace.get_current_span(context).get_span_context()
    assert remote.is_valid and remote.is_remote
    assert (f"{remote.trace_id:032x}", f"{remote.span_id:016x}") == (TRACE, ours.span_id)
    assert remote.trace_state.get("congo") == "t61rcWkgMzE"


def test_log_lines_carry_the_trace_id_beside_the_request_id(capsys):
    """Text log lines hold trace_id=<the trace> inside a trace, and trace_id=- outside one."""
    logging.config.dictConfig(get_logging_config("svc", log_format="text"))
    try:
        with trace_context(TraceContext.from_headers(VALID)):
            logging.getLogger("tests.trace").warning("inside")
        logging.getLogger("tests.trace").warning("outside")
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}})
    inside, outside = (TEXT_LINE_PATTERN.match(line) for line in capsys.readouterr().err.splitlines())
    assert (inside["trace_id"], outside["trace_id"]) == (TRACE, "-")
