"""shared_core's shape: one list of public names, and a data layer that loads without the HTTP stack.

The layers themselves are import-linter's contracts in pyproject.toml, run by `make lint`.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys

import shared_core
from devstack import ROOT

#: Packages the data layer must not load: the HTTP client's and the web layer's.
HTTP_STACK = ("requests", "urllib3", "ninja", "pydantic", "shared_core.clients", "shared_core.api")

#: Run in a fresh interpreter: Django with no project, then the data layer; prints the modules it loaded.
LOAD_THE_DATA_LAYER = """
import json, sys
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=[])
django.setup()
import shared_core.models, shared_core.signals
print(json.dumps(sorted(sys.modules)))
"""


def type_checking_imports() -> dict[str, str]:
    """The names shared_core/__init__.py imports for static tools, each with its module (``api``, ``models``...)."""
    tree = ast.parse((ROOT / "shared_core" / "__init__.py").read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    return {
        alias.name: node.module.removeprefix("shared_core.")
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def test_the_static_imports_and_all_are_the_one_list_of_public_names():
    """Every name in _PUBLIC is imported for static tools from its module, and nothing else is; __all__ is _PUBLIC."""
    assert type_checking_imports() == shared_core._PUBLIC
    assert shared_core.__all__ == sorted(["__version__", *shared_core._PUBLIC])


def test_each_public_name_is_in_its_modules_all_and_is_the_same_object():
    """``from shared_core import X`` is ``from shared_core.<module> import X``, which that module's __all__ names."""
    for name, module_name in shared_core._PUBLIC.items():
        module = importlib.import_module(f"shared_core.{module_name}")
        assert name in module.__all__, (name, module_name)
        assert getattr(shared_core, name) is getattr(module, name)


def test_the_data_layer_loads_without_the_http_stack():
    """Importing shared_core.models in a fresh interpreter loads neither requests, urllib3, ninja nor pydantic."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_THE_DATA_LAYER], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "shared_core.models" in loaded
    assert [m for m in loaded if m.split(".")[0] in HTTP_STACK or m in HTTP_STACK] == []


#: The longest a function of shared_core may be, in lines after its docstring, unless the comment on the line
#: above its ``def`` (or its decorators) says why it is longer.
MAX_FUNCTION_LINES = 40


def test_no_function_in_shared_core_is_longer_than_40_lines_without_saying_why():
    """Each function's code after its docstring fits in MAX_FUNCTION_LINES, or a comment above it says why."""
    long = []
    for path in sorted((ROOT / "shared_core").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = node.body[0]
            documented = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            start = first.end_lineno + 1 if documented and first.end_lineno else node.lineno
            top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            said_why = lines[top - 2].strip().startswith("#") if top >= 2 else False
            if node.end_lineno and node.end_lineno - start + 1 > MAX_FUNCTION_LINES and not said_why:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []
