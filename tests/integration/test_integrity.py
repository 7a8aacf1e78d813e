"""Across containers: upload bursts (issues 24 and 36), a volume that fills, the edge keeping internal headers in."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from docker.models.containers import Container

from tests.integration.conftest import eventually
from tests.integration.test_api_regressions import new_ticket
from tests.soak.runner import TMP_PROBE

pytestmark = pytest.mark.docker

#: The burst that filled file-service's 64 MiB /tmp and left it dying by SIGBUS: 16 uploads of 10 MiB at once.
BURST, UPLOAD_BYTES = 16, 10 * 1024 * 1024 - 4096
#: Bytes /tmp may hold above where it started once the burst is over (metrics files of replaced workers).
TMP_SLACK = 2 * 1024 * 1024


def tmp_usage(stack) -> int:
    return int(json.loads(stack.container("file-service").exec_run(["python3", "-c", TMP_PROBE]).output)["tmp"])


def test_a_burst_of_large_uploads_is_taken_whole_and_leaves_tmp_as_it_was(stack):
    """16 concurrent 10 MiB uploads through the edge: 16 of 16 stored (spooled on the files' volume, not /tmp),
    /tmp and the spool back where they were, file-service healthy."""
    ticket = new_ticket(stack)
    before = tmp_usage(stack)

    def upload(n: int) -> requests.Response:
        files = {"file": (f"burst-{n}.bin", os.urandom(UPLOAD_BYTES), "application/octet-stream")}
        return stack.call("POST", "file-service", "/api/files/", data={"ticket_id": ticket}, files=files)

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(upload, range(BURST)))
    assert [answer.status_code for answer in answers] == [201] * BURST, [a.text[:200] for a in answers]
    eventually(
        lambda: tmp_usage(stack) <= before + TMP_SLACK, 30, "/tmp back to where it was", lambda: tmp_usage(stack)
    )
    eventually(lambda: spool_files(stack) == [], 30, "the spool empty", lambda: spool_files(stack))
    stack.wait_healthy("file-service")
    stored = stack.call("GET", "file-service", "/api/files/", params={"ticket_id": ticket}).json()["results"]
    assert len(stored) == BURST


def spool_files(stack) -> list[str]:
    listing = stack.container("file-service").exec_run(["sh", "-c", 'ls -A "$FILE_UPLOAD_TEMP_DIR"'])
    return [name for name in listing.output.decode().split() if name != ".lock"]


#: Free bytes left on the one-off file-service's volume: less than an upload plus the default reserve (16 MiB).
LEFT_FREE = 4 * 1024 * 1024

_FILL = (
    "import os, sys; st = os.statvfs('/data'); fd = os.open('/data/filler', os.O_CREAT | os.O_WRONLY); "
    "os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize - int(sys.argv[1]))"
)
_UPLOAD = (
    "import json, os, sys, requests; answer = requests.post('http://127.0.0.1:8000/api/files/', "
    "headers={'Authorization': 'Bearer ' + sys.argv[1]}, data={'ticket_id': '00000000-0000-4000-8000-000000000001'}, "
    "files={'file': ('big.bin', os.urandom(int(sys.argv[2])))}, timeout=60); "
    "print(json.dumps({'status': answer.status_code, 'body': answer.json()}))"
)


@pytest.fixture
def lone_file_service(stack) -> Iterator[Container]:
    """file-service's image alone, its /data a 48 MiB tmpfs (a volume that can really fill), healthy."""
    image = stack.container("file-service").image
    uid, _, gid = image.attrs["Config"]["User"].partition(":")
    container = stack.client.containers.run(
        image,
        detach=True,
        read_only=True,
        tmpfs={"/data": f"size=48m,uid={uid},gid={gid or uid}", "/tmp": "size=64m"},
        environment={
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "SERVICE_AUTH_TOKEN": "lone-token",
            "DATABASE_URL": "sqlite:////data/db.sqlite3",
            "TICKET_SERVICE_URL": "http://127.0.0.1:9",  # nothing listens: a stored upload is never the point
        },
    )
    try:
        eventually(lambda: healthy(container), 60, "the lone file-service healthy", lambda: container.logs()[-2000:])
        yield container
    finally:
        container.remove(force=True, v=True)


def healthy(container: Container) -> bool:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status") == "healthy"


def test_a_full_volume_is_a_clean_507_that_leaves_nothing_behind(lone_file_service):
    """With the files' volume all but full, a 10 MiB upload is a JSON 507 before a byte is spooled, and the
    spool, the blobs and /tmp hold nothing of it; with room again, a refused upload leaves no spool file."""
    run = lone_file_service.exec_run
    assert run(["python3", "-c", _FILL, str(LEFT_FREE)]).exit_code == 0
    before = int(json.loads(run(["python3", "-c", TMP_PROBE]).output)["tmp"])
    refused = json.loads(run(["python3", "-c", _UPLOAD, "lone-token", str(UPLOAD_BYTES)]).output)
    assert refused["status"] == 507 and refused["body"]["error"] == "insufficient_storage", refused
    assert refused["body"]["request_id"]
    left = run(["sh", "-c", "ls -A /data/uploads; ls -A /data/files 2>/dev/null || true"]).output.decode().split()
    assert left == [".lock"], left
    assert int(json.loads(run(["python3", "-c", TMP_PROBE]).output)["tmp"]) <= before + TMP_SLACK
    assert run(["rm", "/data/filler"]).exit_code == 0
    unchecked = json.loads(run(["python3", "-c", _UPLOAD, "lone-token", str(UPLOAD_BYTES)]).output)
    assert unchecked["status"] in (503, 504), unchecked  # spooled, then its ticket could not be checked
    assert run(["ls", "-A", "/data/uploads"]).output.decode().split() == [".lock"]


def test_the_edge_never_hands_a_client_the_caller_a_service_authenticated(stack):
    """X-Service-Caller names the caller for the service's own access line; through the edge it is gone."""
    answer = stack.call("GET", "ticket-service", "/api/tickets/")
    assert answer.status_code == 200 and "X-Service-Caller" not in answer.headers
    inside = stack.container("ticket-service").exec_run(["python3", "-c", _INSIDE_CALL, stack.token])
    assert json.loads(inside.output)["X-Service-Caller"] == "operator"


_INSIDE_CALL = (
    "import json, sys, urllib.request; r = urllib.request.Request('http://127.0.0.1:8000/api/tickets/', "
    "headers={'Authorization': 'Bearer ' + sys.argv[1]}); print(json.dumps(dict(urllib.request.urlopen(r).headers)))"
)
