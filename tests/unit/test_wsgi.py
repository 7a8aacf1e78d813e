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
