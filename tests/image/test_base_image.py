"""Contract tests of the base image, through a child image built FROM it and run with Docker."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "base-image" / "requirements.lock"
VERSION = re.search(r'__version__ = "(.+)"', (ROOT / "shared_core" / "__init__.py").read_text())[1]
RESULTS = ROOT / "build" / "test-results"
SECRETS = re.compile(r"(?i)(bearer\s+\S+|-----BEGIN [A-Z ]*KEY|(token|secret|password|api_?key)\s*=\s*\S+)")


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", LOCK.read_text(), flags=re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def run_once(docker_client, image, command, **kwargs) -> str:
    return docker_client.containers.run(image.id, command, remove=True, **kwargs).decode().strip()


def test_runs_as_fixed_non_root_user(docker_client, child_image):
    """Containers run as uid and gid 10001, not root."""
    assert child_image.attrs["Config"]["User"] == "10001:10001"
    assert run_once(docker_client, child_image, ["id", "-u"]) == "10001"


def test_shared_core_imports_from_fixed_pythonpath(docker_client, child_image):
    """PYTHONPATH is /opt/shared and shared_core imports from there at the image's version."""
    out = run_once(
        docker_client,
        child_image,
        [
            "python3",
            "-c",
            "import os, shared_core; print(os.environ['PYTHONPATH'], shared_core.__file__, shared_core.__version__)",
        ],
    )
    assert out == f"/opt/shared /opt/shared/shared_core/__init__.py {VERSION}"


def test_installed_versions_equal_the_lock_file(docker_client, child_image):
    """Every distribution in the image is exactly the locked one, plus shared-core itself; nothing else is there."""
    script = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    installed = json.loads(run_once(docker_client, child_image, ["python3", "-c", script]))
    assert {k.lower().replace("_", "-"): v for k, v in installed.items()} == {
        **locked_versions(),
        "shared-core": VERSION,
    }


def test_shared_core_is_installed_from_its_wheel(docker_client, child_image):
    """/opt/shared holds exactly the files of the wheel `make dist` built, as distribution shared-core at the label's
    version."""
    script = textwrap.dedent(
        """
        import importlib.metadata as m, json
        d = m.distribution("shared-core")
        print(json.dumps([d.version, sorted(str(f) for f in d.files if "__pycache__" not in str(f))]))
        """
    )
    version, files = json.loads(run_once(docker_client, child_image, ["python3", "-c", script]))
    with zipfile.ZipFile(ROOT / "base-image" / "dist" / f"shared_core-{VERSION}-py3-none-any.whl") as wheel:
        packaged = sorted(n for n in wheel.namelist() if not n.endswith("/"))
    assert version == VERSION == child_image.labels["org.opencontainers.image.version"]
    assert {f for f in files if not f.endswith(("INSTALLER", "REQUESTED", "direct_url.json"))} == set(packaged)


def test_the_sbom_lists_every_debian_package_and_python_distribution(docker_client, child_image):
    """The CycloneDX SBOM the label points to names every installed Debian package and Python distribution, at
    its version, and nothing else."""
    path = child_image.labels["io.shared-core.sbom"]
    bom = json.loads(run_once(docker_client, child_image, ["cat", path]))
    assert bom["bomFormat"] == "CycloneDX" and bom["metadata"]["component"]["version"] == VERSION
    script = textwrap.dedent(
        """
        import importlib.metadata as m, json, subprocess
        debs = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\\n"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
        print(json.dumps({
            "deb": sorted(" ".join(line.split()[1:]) for line in debs if line.startswith("installed ")),
            "pypi": sorted(f"{d.metadata['Name'].lower()} {d.version}" for d in m.distributions()),
        }))
        """
    )
    installed = json.loads(run_once(docker_client, child_image, ["python3", "-c", script]))
    listed = {"deb": [], "pypi": []}
    for component in bom["components"]:
        kind = component["purl"].split("/")[0].removeprefix("pkg:")
        name = component["name"].lower() if kind == "pypi" else component["name"]
        listed[kind].append(f"{name} {component['version']}")
    assert sorted(listed["deb"]) == installed["deb"] and len(installed["deb"]) > 50
    assert sorted(listed["pypi"]) == installed["pypi"] and f"shared-core {VERSION}" in installed["pypi"]


def test_no_compiler_package_manager_or_caches(docker_client, child_image):
    """No compiler, pip, apt or apt lists, docs (but the SBOM) or translations; bytecode is precompiled."""
    script = textwrap.dedent(
        """
        import glob, pathlib, shutil
        print([t for t in ("gcc", "cc", "pip", "apt-get", "curl", "perl") if shutil.which(t)])
        docs = [*pathlib.Path("/var/lib/apt/lists").glob("*"), *pathlib.Path("/usr/share/doc").glob("*")]
        print(len([p for p in docs if str(p) != "/usr/share/doc/shared-core"]))
        print(len([p for p in pathlib.Path("/usr/share/locale").glob("*") if p.name != "locale.alias"]))
        print(bool(glob.glob("/opt/venv/lib/python3*/site-packages/django/db/__pycache__/*.pyc")))
        print(bool(glob.glob("/opt/shared/shared_core/__pycache__/*.pyc")))
        """
    )
    out = run_once(docker_client, child_image, ["python3", "-c", script]).splitlines()
    assert out == ["[]", "0", "0", "True", "True"]


def test_labels_name_versions_and_revision(base_image):
    """OCI labels give version, revision, created and source, plus Python, Django and shared_core versions."""
    labels = base_image.labels
    assert labels["org.opencontainers.image.version"] == VERSION == labels["io.shared-core.version"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert labels["org.opencontainers.image.source"]
    assert labels["io.shared-core.python-version"].startswith("3.")
    assert labels["io.shared-core.django-version"] == locked_versions()["django"]


def test_no_secrets_in_history_or_config(base_image, child_image):
    """Neither docker history nor the image config holds anything shaped like a token or key."""
    for image in (base_image, child_image):
        texts = [entry.get("CreatedBy", "") for entry in image.history()]
        texts += image.attrs["Config"].get("Env") or []
        leaks = [t for t in texts if SECRETS.search(t)]
        assert leaks == []


def test_read_only_root_serves_and_turns_healthy(run_child):
    """With a read-only root and a tmpfs /tmp, the service starts, its HEALTHCHECK turns healthy, and it answers."""
    child = run_child()
    response = child.get("/healthz", headers={"X-Request-ID": "contract-1"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "contract-1"
    assert [line for line in child.logs().splitlines() if " ERROR " in line] == []


def test_healthcheck_asks_readiness_until_ready_once_then_only_liveness(run_child):
    """With HEALTHCHECK_READY_PATH, the probe fails until that path has answered 2xx once, and not after it."""
    child = run_child(wait=False, environment={"HEALTHCHECK_READY_PATH": "/readyz", "HEALTHCHECK_TIMEOUT": "5"})
    child.wait_for_log("Booting worker")
    probe = ["python3", "/usr/local/bin/healthcheck"]
    not_ready = child.container.exec_run(probe)
    assert not_ready.exit_code == 1 and b"/readyz" in not_ready.output, not_ready
    child.container.exec_run(["touch", "/tmp/ready"])
    assert child.container.exec_run(probe).exit_code == 0
    child.container.exec_run(["rm", "/tmp/ready"])
    assert child.get("/readyz").status_code == 503
    assert child.container.exec_run(probe).exit_code == 0  # a database outage later restarts nothing
    child.wait_healthy()


def test_tini_is_pid_one_and_gunicorn_uses_env_settings(run_child):
    """tini is PID 1; WEB_CONCURRENCY sets gunicorn's worker count."""
    child = run_child(environment={"WEB_CONCURRENCY": "3"})
    pid1 = child.container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")[0]
    assert pid1.endswith(b"tini")
    script = (
        "import pathlib; argvs = [p.read_bytes().split(b'\\0') for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')]; "
        "print(sum(1 for argv in argvs if len(argv) > 1 and argv[1].endswith(b'bin/gunicorn')))"
    )
    # the master plus three workers
    assert child.container.exec_run(["python3", "-c", script]).output.strip() == b"4"


def test_access_log_lines_use_the_shared_format_with_request_id(run_child):
    """gunicorn's access line goes through the shared logging config and carries the request and trace ids."""
    child = run_child()
    child.get("/healthz", headers={"X-Request-ID": "access-42"})
    child.wait_for_log("access-42")
    lines = [line for line in child.logs().splitlines() if "access-42" in line]
    pattern = r"^\S+Z INFO service=contract-child request_id=access-42 trace_id=[0-9a-f]{32} logger=gunicorn.access "
    assert lines and re.match(pattern, lines[0])


def test_gunicorn_access_log_0_turns_the_access_line_off(run_child):
    """GUNICORN_ACCESS_LOG=0: requests leave no access line, while the service's own lines still appear."""
    child = run_child(environment={"GUNICORN_ACCESS_LOG": "0"})
    child.get("/healthz", headers={"X-Request-ID": "quiet-1"})
    child.get("/slow?seconds=0", headers={"X-Request-ID": "quiet-2"})
    child.wait_for_log("request_id=quiet-2")
    assert "logger=gunicorn.access" not in child.logs()


def test_docker_stop_lets_in_flight_request_finish_and_exits_zero(run_child):
    """docker stop during a 3 s request: the request completes, and the container exits 0 well before the kill."""
    child = run_child()
    result: dict[str, object] = {}

    def slow_call() -> None:
        try:
            result["response"] = requests.get(child.url + "/slow?seconds=3", timeout=30)
        except requests.RequestException as exc:
            result["error"] = exc

    caller = threading.Thread(target=slow_call)
    caller.start()
    child.wait_for_log("slow request started")
    started = time.monotonic()
    child.container.stop(timeout=25)
    stopped_after = time.monotonic() - started
    caller.join(30)
    child.container.reload()
    assert "error" not in result, result
    assert result["response"].status_code == 200
    assert child.container.attrs["State"]["ExitCode"] == 0
    assert stopped_after < 25


def test_incompatible_shared_core_requirement_fails_with_one_line(run_child):
    """A service requiring another shared_core version stops at start with one line naming both versions."""
    child = run_child(wait=False, environment={"SHARED_CORE_REQUIRES": ">=99.0"})
    assert child.container.wait(timeout=60)["StatusCode"] == 1
    lines = child.logs().strip().splitlines()
    assert len(lines) == 1 and VERSION in lines[0] and ">=99.0" in lines[0]


#: The base image's size bar (README), in bytes.
MAX_BASE_BYTES = 110_000_000


def test_record_image_size(base_image, docker_client, child_image):
    """The base image stays within 110 MB; its size and the child's added size go to image-size.json."""
    added = child_image.attrs["Size"] - base_image.attrs["Size"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"base_bytes": base_image.attrs["Size"], "child_added_bytes": added}
    (RESULTS / "image-size.json").write_text(json.dumps(record) + "\n")
    assert base_image.attrs["Size"] <= MAX_BASE_BYTES, f"base image is {base_image.attrs['Size'] / 1e6:.1f} MB"
    assert 0 <= added < 1_000_000, f"a three-line child added {added} bytes"


def test_replaced_workers_leave_no_metrics_files_and_their_counts_stay(run_child):
    """Workers replaced after every request: /metrics still counts every request, and only live pids keep files."""
    child = run_child(
        environment={"GUNICORN_MAX_REQUESTS": "1", "GUNICORN_MAX_REQUESTS_JITTER": "0", "WEB_CONCURRENCY": "2"}
    )
    served = 0
    give_up = time.monotonic() + 120
    while served < REPLACED_WORKERS:
        assert time.monotonic() < give_up, f"only {served} requests served:\n{child.logs()}"
        try:
            served += child.get("/slow?seconds=0").status_code == 200
        except requests.ConnectionError:  # both workers restarting at this moment
            time.sleep(0.1)
    text = child.get("/metrics").text
    counted = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_server_requests_total" and sample.labels["route"] == "/slow"
    )
    assert counted == REPLACED_WORKERS

    def only_live_files() -> list[str] | None:
        """The directory's files once every pid file belongs to a live process (the scrape's worker exits too)."""
        listing = child.container.exec_run(["python3", "-c", LIST_METRICS_FILES]).output.decode().split()
        pids = {name.rsplit("_", 1)[1].removesuffix(".db") for name in listing if not name.endswith("_archive.db")}
        return listing if pids <= live_pids(child) else None

    give_up = time.monotonic() + 30
    while (listing := only_live_files()) is None:
        assert time.monotonic() < give_up, "dead workers' metrics files were never removed"
        time.sleep(0.2)
    assert len(listing) <= 12, listing


#: Requests in the test above; each one replaces a worker.
REPLACED_WORKERS = 30
LIST_METRICS_FILES = "import os; print(*sorted(n for n in os.listdir('/tmp/prometheus') if n.endswith('.db')))"


def live_pids(child) -> set[str]:
    script = "import os; print(*[p for p in os.listdir('/proc') if p.isdigit()])"
    return set(child.container.exec_run(["python3", "-c", script]).output.decode().split())
