"""The docs cannot drift from the code: every example in README.md and docs/ runs (or, for a fragment,
compiles and imports only what exists), every `make` target they name exists, the rendered API reference
documents exactly the public API, and every dotted shared_core name anywhere exists."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

import shared_core
from devstack import ROOT, SERVICES
from devstack.service_apis import document

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?:<!-- fragment(?P<why>[^>]*)-->\n)?^```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)^```", re.M | re.S)
#: One namespace per page: a page's examples run in order, each building on the ones before it.
_NAMESPACES: dict[str, dict[str, object]] = {}
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "make").glob("*.mk"))]
MAKE_TARGETS = {t for path in MAKEFILES for t in re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", path.read_text(), re.M)}


def blocks(*langs: str) -> list[pytest.param]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group("lang") in langs:
                line = text[: match.start("code")].count("\n") + 1
                name = f"{page.relative_to(ROOT)}:{line}"
                param = (match.group("code"), match.group("why") is not None, str(page))
                found.append(pytest.param(*param, id=name))
    return found


def imports_resolve(code: str) -> None:
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "shared_core":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "fragment", "page"), blocks("python"))
def test_every_python_example_runs(code, fragment, page, monkeypatch):
    """A Python example runs as written, after its page's earlier ones; a fragment compiles and imports what exists."""
    compile(code, "<example>", "exec")
    imports_resolve(code)
    if fragment:
        return
    monkeypatch.setenv("NINJA_SKIP_REGISTRY", "1")
    before = set(apps.all_models["testapp"])
    try:
        namespace = _NAMESPACES.setdefault(page, {"__name__": "tests.testapp.docs_example"})
        exec(compile(code, "<example>", "exec"), namespace)  # noqa: S102 - the docs' own examples
    finally:
        for model in set(apps.all_models["testapp"]) - before:  # models an example defined, gone again
            del apps.all_models["testapp"][model]
        apps.clear_cache()


@pytest.mark.parametrize(("code", "fragment", "page"), blocks("sh", "bash"))
def test_every_shell_example_parses_and_names_real_make_targets(code, fragment, page):
    """A shell example is valid bash, and each `make` target it runs is in the Makefile."""
    subprocess.run(["bash", "-n"], input=code, text=True, check=True)
    for target in re.findall(r"(?:^|[;&|]\s*)make ([a-z][a-z0-9_-]*)", code, re.M):
        assert target in MAKE_TARGETS, f"make {target} is not a Makefile target"


#: The public modules, each with a page in docs/reference/.
PUBLIC_MODULES = sorted(
    f"shared_core.{page.stem}" for page in (ROOT / "docs" / "reference").glob("*.md") if page.stem != "index"
)
#: A dotted name of shared_core in a docstring or a page: it must exist. (A system check's id, such as
#: shared_core.E001, is no name.)
DOTTED = re.compile(r"\bshared_core(?:\.(?![EWI]\d{3}\b)\w+)+")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The docs site, built as `make docs` builds it (strictly), into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_reference_table_lists_exactly_the_public_api():
    """docs/reference/index.md's table names every public name, each under its module, and nothing else."""
    table = (ROOT / "docs" / "reference" / "index.md").read_text()
    listed = {}
    for module, names in re.findall(r"^\| \[`(shared_core[\w.]*)`\]\([\w.]+\) \| (.*) \|$", table, re.M):
        listed[module] = set(re.findall(r"`(\w+)`", names))
    assert sorted(listed) == PUBLIC_MODULES
    for module, names in listed.items():
        assert names == set(importlib.import_module(module).__all__), module
    assert {n for n in shared_core.__all__ if n != "__version__"} <= set().union(*listed.values())


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_each_reference_page_renders_exactly_its_modules_public_names(site, module):
    """The built page of a public module documents every name in its __all__, and no other member."""
    html = (site / "reference" / module.split(".", 1)[1] / "index.html").read_text()
    anchors = set(re.findall(rf'id="{re.escape(module)}\.(\w+)"', html))
    assert anchors == set(importlib.import_module(module).__all__)


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_api_page_shows_every_operation_of_its_openapi_document(site, service):
    """The site's page of a service anchors every operation its OpenAPI document has, and no other, and serves
    that document for download as it is."""
    spec = document(service)
    operations = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    html = (site / "services" / service / "index.html").read_text()
    assert set(re.findall(r'<a id="(\w+)"></a>', html)) == operations
    assert json.loads((site / "services" / f"{service}.openapi.json").read_text()) == spec
    for schema in spec["components"]["schemas"]:
        assert f"<code>{schema}</code>" in html, schema


def test_every_dotted_shared_core_name_in_a_docstring_or_a_page_exists():
    """``shared_core.x.y`` named in shared_core's code and docstrings, README.md or docs/ imports or resolves."""
    sources = [*sorted((ROOT / "shared_core").rglob("*.py")), *PAGES]
    missing = set()
    for path in sources:
        for name in set(DOTTED.findall(path.read_text())):
            if not _resolves(name):
                missing.add(f"{path.relative_to(ROOT)}: {name}")
    assert sorted(missing) == []


def _resolves(name: str) -> bool:
    try:
        pkgutil.resolve_name(name)
    except (ImportError, AttributeError):
        return False
    return True


def test_the_readme_is_a_front_door():
    """README.md stays under 200 lines; the detail lives in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


#: Start scripts whose ``: "${NAME:=default}"`` lines are settings, each with its row in the configuration table.
START_SCRIPTS = [ROOT / "proxy" / "bin" / "proxy-start"]
SCRIPT_DEFAULT = re.compile(r'^: "\$\{(?P<name>[A-Z0-9_]+):=(?P<default>[^$}]*)\}"', re.M)


@pytest.mark.parametrize("script", START_SCRIPTS, ids=lambda path: path.name)
def test_every_start_script_setting_is_in_the_configuration_table_with_its_default(script):
    """Each variable a start script defaults has a row in the configuration table that names it and its default."""
    table = (ROOT / "docs" / "operating" / "configuration.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    missing = []
    for match in SCRIPT_DEFAULT.finditer(script.read_text()):
        name, default = match["name"], match["default"]
        naming = [row.split("|") for row in rows if f"`{name}`" in row.split("|")[1]]
        if not any(f"`{default}`" in cells[3] and script.name in cells[2] for cells in naming):
            missing.append(f"{name}={default}")
    assert not missing, f"not in docs/operating/configuration.md with their defaults: {missing}"
