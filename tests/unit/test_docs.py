"""The docs cannot drift from the code: every example in README.md and docs/ runs (or, for a fragment,
compiles and imports only what exists), every `make` target they name exists, and the API reference
lists exactly the public API."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess

import pytest
from django.apps import apps

import shared_core
from devstack import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?:<!-- fragment(?P<why>[^>]*)-->\n)?^```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)^```", re.M | re.S)
#: One namespace per page: a page's examples run in order, each building on the ones before it.
_NAMESPACES: dict[str, dict[str, object]] = {}
MAKE_TARGETS = set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", (ROOT / "Makefile").read_text(), re.M))


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


def test_the_reference_lists_exactly_the_public_api():
    """docs/reference.md's table names every public name, and nothing else."""
    table = (ROOT / "docs" / "reference.md").read_text().split("::: ", 1)[0]
    listed = {}
    for module, names in re.findall(r"^\| `(shared_core[\w.]*)` \| (.*) \|$", table, re.M):
        listed[module] = set(re.findall(r"`(\w+)`", names))
    public = {name for name in shared_core.__all__ if name != "__version__"}
    by_module = (
        "shared_core.testing",
        "shared_core.outbox",
        "shared_core.instrumentation",
        "shared_core.pytest_plugin",
    )
    assert set().union(*listed.values()) == public.union(*(listed[module] for module in by_module))
    for module, names in listed.items():
        assert names <= set(importlib.import_module(module).__all__), module
    for module in by_module:
        assert listed[module] == set(importlib.import_module(module).__all__)


def test_the_readme_is_a_front_door():
    """README.md stays under 200 lines; the detail lives in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) < 200
