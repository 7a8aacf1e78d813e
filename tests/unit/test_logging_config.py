"""get_logging_config(): one line per record, the same fields in text and JSON, no tokens."""

import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from shared_core.context import request_context
from shared_core.logging_config import TEXT_LINE_PATTERN, get_logging_config, redact


class Captured:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def capture(capsys) -> Iterator[Captured]:
    yield Captured(capsys)
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}})


def emit(config: dict) -> None:
    logging.config.dictConfig(config)
    log = logging.getLogger("tests.demo")
    with request_context("rid-7"):
        log.info("hello %s", "world")
        log.warning("token Bearer abc.def-123 seen")
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception("failed")
    log.info("outside")


def test_text_lines_all_match_the_shared_pattern(capture):
    """Every text line, tracebacks included, is one line matching TEXT_LINE_PATTERN."""
    emit(get_logging_config("ticket-service", log_format="text"))
    lines = capture.getvalue().splitlines()
    assert len(lines) == 4
    parsed = [TEXT_LINE_PATTERN.match(line) for line in lines]
    assert all(parsed), lines
    first = parsed[0].groupdict()
    assert first["service"] == "ticket-service" and first["request_id"] == "rid-7"
    assert first["logger"] == "tests.demo" and first["level"] == "INFO" and first["message"] == "hello world"
    assert "Traceback" in parsed[2]["message"] and parsed[3]["request_id"] == "-"


def test_json_lines_have_the_fixed_keys(capture):
    """JSON mode writes one object per line with timestamp, level, service, logger, request_id, trace_id, message."""
    emit(get_logging_config("user-service", log_format="json"))
    records = [json.loads(line) for line in capture.getvalue().splitlines()]
    keys = {"timestamp", "level", "service", "logger", "request_id", "trace_id", "message"}
    assert len(records) == 4 and all(keys <= set(r) for r in records)
    assert records[0]["service"] == "user-service" and records[0]["request_id"] == "rid-7"
    assert "ValueError" in records[2]["exception"]


def test_bearer_tokens_are_redacted(capture):
    """A bearer token in a log message is replaced in the output."""
    emit(get_logging_config("s", log_format="text"))
    assert "abc.def-123" not in capture.getvalue() and "Bearer [redacted]" in capture.getvalue()


def test_level_comes_from_argument_env_or_debug_flag(monkeypatch):
    """LOG_LEVEL wins over the debug flag; debug means DEBUG; otherwise INFO."""
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert get_logging_config("s")["root"]["level"] == "INFO"
    assert get_logging_config("s", debug=True)["root"]["level"] == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert get_logging_config("s", debug=True)["root"]["level"] == "WARNING"
    assert get_logging_config("s", level="error")["root"]["level"] == "ERROR"


def test_service_and_format_fall_back_to_the_environment(monkeypatch):
    """SERVICE_NAME and LOG_FORMAT are used when no argument is given."""
    monkeypatch.setenv("SERVICE_NAME", "file-service")
    monkeypatch.setenv("LOG_FORMAT", "json")
    config = get_logging_config()
    assert config["filters"]["context"]["service"] == "file-service" and "json" in config["formatters"]


def test_unknown_level_or_format_raises_value_error():
    """A typo in the level or format is a ValueError that names it."""
    with pytest.raises(ValueError, match="LOUD"):
        get_logging_config("s", level="LOUD")
    with pytest.raises(ValueError, match="xml"):
        get_logging_config("s", log_format="xml")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_tokens_are_redacted_in_any_case_in_tracebacks_and_query_strings(capture, log_format):
    """BEARER in capitals, a token inside exception text (JSON exception field too) and ?access_token= never leak."""
    logging.config.dictConfig(get_logging_config("s", log_format=log_format))
    log = logging.getLogger("tests.redact")
    log.warning("header was BEARER tok-upper-1")
    try:
        raise RuntimeError("upstream said Bearer tok-in-exc-2")
    except RuntimeError:
        log.exception("call failed")
    logging.getLogger("gunicorn.access").info(
        "%(r)s %(s)s", {"r": "GET /api/users/?limit=5&access_token=tok-query-3&x=1 HTTP/1.1", "s": "401"}
    )
    out = capture.getvalue()
    for secret in ("tok-upper-1", "tok-in-exc-2", "tok-query-3"):
        assert secret not in out, (secret, out)
    assert "access_token=[redacted]" in out and "limit=5" in out and out.count("[redacted]") >= 3


#: Secret parameter names in other cases and separators; each must be redacted.
CAMEL_AND_OTHER_SECRETS = (
    "accessToken", "clientSecret", "refreshToken", "idToken", "secretKey", "privateKey", "authToken", "sessionToken",
    "apiKey", "AccessToken", "ACCESS_TOKEN", "accesstoken", "CLIENTSECRET", "privatekey", "x.Api.Key", "Client-Secret",
)  # fmt: skip


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("?access_token=s1&limit=5", "limit=5"),
        ("?x-api-key=s1&author_id=7", "author_id=7"),
        ("?password=s1&design=blue", "design=blue"),
        ("?sessionid=s1&ticket_id=9", "ticket_id=9"),
        ("?Signature=s1&code=s1", "?Signature=[redacted]&code=[redacted]"),
        *((f"?{name}=s1&monkey=m&keyboard=k", "&monkey=m&keyboard=k") for name in CAMEL_AND_OTHER_SECRETS),
    ],
)
def test_redaction_takes_secret_names_and_leaves_the_rest(query, kept):
    """Secret-named parameters lose their values; names that only contain such a word keep theirs."""
    line = redact(f"GET /api/x/{query} HTTP/1.1")
    assert "s1" not in line and kept in line, line


def test_a_logging_mistake_is_reported_not_raised_into_the_view(capture, client):
    """A log call whose arguments do not fit its format leaves the view's answer alone and prints a Logging error."""
    logging.config.dictConfig(get_logging_config("s", log_format="text"))
    response = client.get("/api/log-mistake/", HTTP_AUTHORIZATION="Bearer unit-test-service-token")
    assert response.status_code == 200
    assert "--- Logging error ---" in capture.getvalue()


def test_django_request_lines_carry_the_request_id(capture, client):
    """Django's "Not Found" line, written after the middleware returned, carries that request's id."""
    logging.config.dictConfig(get_logging_config("s", log_format="text"))
    response = client.get(
        "/no/such/path", HTTP_X_REQUEST_ID="rid-404", HTTP_AUTHORIZATION="Bearer unit-test-service-token"
    )
    assert response.status_code == 404
    lines = [TEXT_LINE_PATTERN.match(line) for line in capture.getvalue().splitlines()]
    (not_found,) = [m for m in lines if m and m["logger"] == "django.request"]
    assert not_found["request_id"] == "rid-404" and "Not Found" in not_found["message"]
