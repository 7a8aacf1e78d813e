"""shared-core as a distribution: the wheel installs into a fresh virtualenv on the host's Python, imports from
there at its version, and brings its pytest plugin's fixtures along."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import shared_core
from devstack import ROOT


def run(*command: str | Path, cwd: Path) -> str:
    """Run ``command`` in ``cwd`` as a user outside this repository would: no settings module of ours set."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `make dist` builds, built the same way (uv, build isolation) into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    run(Path(sys.executable).parent / "uv", "build", "--quiet", "--wheel", "--out-dir", out, ROOT, cwd=ROOT)
    (built,) = out.glob("shared_core-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; its dependencies come from this suite's environment (a .pth
    file), so no index is needed."""
    home = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", home, cwd=home)
    site = next((home / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(home / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel, cwd=home)
    return home


def test_the_wheel_holds_the_package_its_types_and_migrations_and_no_tests(wheel):
    """The wheel has shared_core with py.typed and the outbox's migrations, and nothing from tests or services."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "shared_core/py.typed" in names and "shared_core/outbox/migrations/__init__.py" in names
    assert not [
        n
        for n in names
        if n.split("/")[0]
        not in ("shared_core", wheel.name.split("-")[0] + "-" + shared_core.__version__ + ".dist-info")
    ]


def test_it_installs_and_imports_from_the_virtualenv_at_its_version(venv, tmp_path):
    """`pip install` of the wheel gives `import shared_core` from the virtualenv, at __version__, dependencies met."""
    script = "import shared_core, importlib.metadata as m; print(shared_core.__file__, m.version('shared-core'))"
    where, version = run(venv / "bin" / "python", "-c", script, cwd=tmp_path).split()
    assert where.startswith(str(venv)) and version == shared_core.__version__
    run(venv / "bin" / "python", "-m", "pip", "check", cwd=tmp_path)


def test_pytest_finds_the_plugin_and_lists_its_fixtures(venv, tmp_path):
    """Installed, the plugin loads by its entry point: `pytest --fixtures` lists the Compose and upstream fixtures."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    listed = run(venv / "bin" / "python", "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", cwd=tmp_path)
    for fixture in ("compose_stack", "compose_files", "compose_env", "upstream_server"):
        assert re.search(rf"^{fixture}( \[session scope\])? -- .*shared_core/pytest_plugin\.py", listed, re.M), fixture
