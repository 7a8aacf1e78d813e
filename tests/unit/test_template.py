"""The service template (copier.yml, template/): a generated service passes its own checks and unit tests, and
`copier update` carries it to the next template version without losing the team's own changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import shared_core
from devstack import ROOT

COPIER = Path(sys.executable).parent / "copier"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
UNIT_ENV = {
    "DJANGO_SECRET_KEY": "unit-tests-only-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
    "SERVICE_AUTH_TOKEN": "unit-test-token",
    "DATABASE_URL": "sqlite://:memory:",
}


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(
        list(map(str, command)), cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """This repository's template alone, as a git repository tagged v1.0.0 (copier's versions are tags)."""
    repo = tmp_path / "template-repo"
    repo.mkdir()
    shutil.copy(ROOT / "copier.yml", repo)
    shutil.copytree(ROOT / "template", repo / "template")
    run(*GIT, "init", "--quiet", cwd=repo)
    run(*GIT, "add", "-A", cwd=repo)
    run(*GIT, "commit", "--quiet", "-m", "template", cwd=repo)
    run(*GIT, "tag", "v1.0.0", cwd=repo)
    return repo


def generate(template_repo: Path, dest: Path, ref: str = "v1.0.0") -> Path:
    run(
        COPIER, "copy", "--quiet", "--trust", "--defaults", "--vcs-ref", ref,
        "--data", "service_name=demo-service", "--data", "model_name=Gadget",
        "--data", f"shared_core_version={shared_core.__version__}",
        template_repo, dest, cwd=dest.parent,
    )  # fmt: skip
    return dest


def test_the_template_defaults_to_this_release():
    """copier.yml's default shared_core_version is __version__: a release moves the template with it."""
    answers = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert answers["shared_core_version"]["default"] == shared_core.__version__


def test_a_generated_service_passes_its_checks_and_unit_tests(template_repo, tmp_path):
    """Generated as is, the service passes Django's deploy checks, has its migration, and its unit tests pass."""
    project = generate(template_repo, tmp_path / "demo-service")
    assert (project / "demo_service" / "models.py").read_text().count("class Gadget(IdempotentModel, BaseModel)") == 1
    assert "ARG BASE_IMAGE=shared-core/base:" + shared_core.__version__ in (project / "Dockerfile").read_text()
    env = {**UNIT_ENV, "PYTHONPATH": f"{project}{os.pathsep}{ROOT}"}
    python = sys.executable
    run(python, "manage.py", "check", "--deploy", "--fail-level", "WARNING", cwd=project, env=env)
    run(python, "manage.py", "makemigrations", "--check", "--dry-run", cwd=project, env=env)
    plugin = ["-p", "shared_core.pytest_plugin", "-p", "no:cacheprovider"]
    out = run(python, "-m", "pytest", "-q", "--ignore=tests/integration", *plugin, cwd=project, env=env)
    assert " passed" in out and "failed" not in out


def test_copier_update_moves_a_project_to_the_next_template_version(template_repo, tmp_path):
    """A project made from v1.0.0 takes v1.1.0's change on `copier update` and keeps its own edit."""
    project = generate(template_repo, tmp_path / "demo-service")
    run(*GIT, "init", "--quiet", cwd=project)
    models = project / "demo_service" / "models.py"
    models.write_text(models.read_text() + "\n# our own note, kept across updates\n")
    run(*GIT, "add", "-A", cwd=project)
    run(*GIT, "commit", "--quiet", "-m", "generated, then ours", cwd=project)

    readme = template_repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA line the template gained in v1.1.0.\n")
    run(*GIT, "commit", "--quiet", "-am", "template v1.1.0", cwd=template_repo)
    run(*GIT, "tag", "v1.1.0", cwd=template_repo)

    run(COPIER, "update", "--quiet", "--trust", "--defaults", "--vcs-ref", "v1.1.0", cwd=project)
    assert "A line the template gained in v1.1.0." in (project / "README.md").read_text()
    assert "# our own note, kept across updates" in models.read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"


def test_a_generated_project_ignores_the_secrets_make_up_writes(template_repo, tmp_path):
    """`.env` (make up's tokens) is git-ignored in a generated project, so `git add -A` never commits it."""
    project = generate(template_repo, tmp_path / "demo-service")
    run(*GIT, "init", "--quiet", cwd=project)
    (project / ".env").write_text("OPERATOR_TOKEN=not-for-git\n")
    run(*GIT, "add", "-A", cwd=project)
    assert ".env" not in run(*GIT, "diff", "--cached", "--name-only", cwd=project).split()


def test_make_new_service_passes_the_model_name(tmp_path):
    """`make new-service NAME=billing-service MODEL=Invoice` writes class Invoice, not the default Item."""
    dest = tmp_path / "billing-service"
    run("make", "-s", "new-service", "NAME=billing-service", "MODEL=Invoice", f"DEST={dest}", cwd=ROOT)
    models = (dest / "billing_service" / "models.py").read_text()
    assert "class Invoice(" in models and "class Item(" not in models


def test_make_join_runs_the_join_file_which_compose_accepts(template_repo, tmp_path):
    """`make join` runs compose.join.yaml, a file Compose renders with the service on the stack's network."""
    project = generate(template_repo, tmp_path / "demo-service")
    env = {"DJANGO_SECRET_KEY": "k" * 50, "SERVICE_AUTH_TOKEN": "t", "OPERATOR_TOKEN": "o"}
    env["STACK_NETWORK"] = "x_backend"
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    compose = ["docker", "compose"] if v2 else ["docker-compose"]
    planned = run("make", "-n", "join", f"COMPOSE={' '.join(compose)}", cwd=project, env=env)
    assert "-f compose.join.yaml up --build -d" in planned
    rendered = yaml.safe_load(run(*compose, "-f", "compose.join.yaml", "config", cwd=project, env=env))
    assert rendered["networks"]["stack"]["name"] == "x_backend"
    assert rendered["services"]["demo-service"]["networks"] == {"stack": None}
