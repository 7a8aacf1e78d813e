"""`make api-check` (tools/api-check): a public name removed without a version step and a CHANGELOG entry fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from devstack import ROOT

TOOL = ROOT / "tools" / "api-check"


def api_check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, check=False)


def tree_without(tmp_path: Path, module: str, name: str) -> Path:
    """A copy of shared_core/ whose ``module`` no longer exports ``name`` (nor the package root)."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "shared_core", tree / "shared_core", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (tree / "shared_core" / f"{module}.py", tree / "shared_core" / "__init__.py"):
        text = path.read_text()
        assert f'"{name}",' in text
        path.write_text(text.replace(f'"{name}",', ""))
    return tree


def test_this_tree_passes_against_the_last_release():
    """The tree's API, against releases/'s last dump, has only breaks the CHANGELOG announces."""
    done = api_check()
    assert done.returncode == 0, done.stderr
    assert "all announced for" in done.stdout or "compatible" in done.stdout


def test_a_removed_public_name_fails_and_is_named(tmp_path):
    """Removing shared_core.api.visible, which 0.1.0 had and no CHANGELOG entry names, fails naming it."""
    done = api_check("--tree", tree_without(tmp_path, "api", "visible"))
    assert done.returncode == 1
    assert "shared_core.api.visible: Public name removed" in done.stderr


def test_a_break_needs_a_version_step_even_when_announced(tmp_path):
    """Against a release of this very tree and version, a break fails even when announced: the version did not step."""
    releases = tmp_path / "releases"
    releases.mkdir()
    assert api_check("--record", "0.2.0", "--releases", releases).returncode == 0
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("## [0.2.0]\n\n### Breaking\n- `shared_core.clients.upstream` is gone.\n")
    tree = tree_without(tmp_path, "clients", "upstream")
    done = api_check("--tree", tree, "--releases", releases, "--changelog", changelog)
    assert done.returncode == 1
    assert "needs a breaking version step" in done.stderr
