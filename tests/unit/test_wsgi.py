"""shared_core.wsgi: requests Django cannot even construct get the JSON envelope, not gunicorn's HTML 500."""

import io
import json
from typing import Any

import pytest

from shared_core.wsgi import get_wsgi_application


def call(environ_extra: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/healthz",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        **environ_extra,
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(get_wsgi_application()(environ, start_response))
    return seen["status"], seen["headers"], json.loads(body)


@pytest.mark.parametrize("content_type", ["text/plain; x*=nope''%41", "multipart/form-data; boundary*=x-bogus''b"])
def test_unparseable_content_type_is_a_json_400_with_the_request_id(content_type):
    """An RFC 2231 parameter Django cannot decode is answered 400 JSON naming Content-Type, with the id."""
    status, headers, body = call({"CONTENT_TYPE": content_type, "HTTP_X_REQUEST_ID": "ct-1"})
    assert status.startswith("400") and headers["Content-Type"] == "application/json"
    assert body == {
        "error": "invalid_header",
        "detail": "Content-Type has a parameter that cannot be parsed",
        "request_id": "ct-1",
    }
    assert headers["X-Request-ID"] == "ct-1"


@pytest.mark.django_db  # Django's request signals close old database connections
def test_valid_requests_reach_django():
    """A request with an ordinary Content-Type is Django's to answer."""
    status, _, body = call({"CONTENT_TYPE": "application/json; charset=utf-8"})
    assert status.startswith("200") and body == {"status": "ok"}


@pytest.mark.django_db
def test_a_chunked_body_reaches_the_view_whole():
    """A Transfer-Encoding: chunked body (no Content-Length) is read for Django, not seen as empty."""
    raw = json.dumps({"at": "2026-01-01T00:00:00+00:00"}).encode()
    status, _, body = call(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/t/when/",
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "HTTP_AUTHORIZATION": "Bearer unit-test-service-token",
            "wsgi.input": io.BytesIO(raw),
        }
    )
    assert status.startswith("200") and body == {"at": "2026-01-01T00:00:00Z"}


def test_a_chunked_body_over_the_limit_is_413_unread_past_it(settings):
    """A chunked body larger than the service accepts is 413 JSON, and no more of it is read than the limit."""
    settings.FILE_UPLOAD_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10, 10
    stream = io.BytesIO(b"x" * 1_000_000)
    chunked = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/t/when/", "HTTP_TRANSFER_ENCODING": "chunked"}
    status, _, body = call({**chunked, "HTTP_AUTHORIZATION": "Bearer unit-test-service-token", "wsgi.input": stream})
    assert status.startswith("413") and body["error"] == "too_large"
    assert stream.tell() < 200_000


class Recording(io.BytesIO):
    """A request body that notes whether any of it was read before the answer was started."""

    def __init__(self, raw: bytes, answered: dict[str, Any]) -> None:
        super().__init__(raw)
        self.answered, self.read_early = answered, False

    def read(self, size: int | None = -1) -> bytes:
        self.read_early = self.read_early or "status" not in self.answered
        return super().read(size)


@pytest.mark.django_db  # Django's request signals close old database connections
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-known-token", "Basic dXNlcjpwdw=="])
def test_a_strangers_chunked_body_is_never_read_ahead(authorization):
    """Without a known caller's token, a chunked body is not spooled before the 401: only drained after it."""
    answered: dict[str, Any] = {}
    stream = Recording(b"x" * 2_000_000, answered)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/t/when/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": stream,
        **({"HTTP_AUTHORIZATION": authorization} if authorization else {}),
    }

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answered["status"] = status

    body = json.loads(b"".join(get_wsgi_application()(environ, start_response)))
    assert answered["status"].startswith("401") and body["error"] == "unauthorized"
    assert not stream.read_early


@pytest.mark.django_db  # Django's request signals close old database connections
def test_a_body_the_view_left_unread_is_drained_before_the_answer():
    """A 401 answered without reading the body still reads it (bounded), so a sending proxy sees the answer."""
    raw = b'{"a": "' + b"x" * 100_000 + b'"}'
    stream = io.BytesIO(raw)
    status, _, body = call(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/t/when/",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": stream,
        }
    )
    assert status.startswith("401") and body["error"] == "unauthorized" and stream.tell() == len(raw)


def test_a_declared_length_over_the_limit_is_413_before_reading(settings):
    """A Content-Length larger than anything the service accepts is 413 JSON without reading the body."""
    settings.FILE_UPLOAD_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10, 10
    stream = io.BytesIO(b"x" * 1_000_000)
    status, _, body = call(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/t/when/", "CONTENT_LENGTH": "1000000", "wsgi.input": stream}
    )
    assert status.startswith("413") and body["error"] == "too_large" and stream.tell() == 0
