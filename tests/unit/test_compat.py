"""shared_core._base.compat: a service's supported shared_core versions, checked at container start."""

import pytest

from shared_core import __version__
from shared_core._base.compat import IncompatibleVersion, main, require, satisfies


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("0.1.0", ">=0.1,<0.2", True),
        ("0.2.0", ">=0.1,<0.2", False),
        ("1.4", "==1.4.0", True),
        ("1.4.1", "!=1.4.1", False),
        ("2.0.0", ">1.9.9", True),
        ("0.9", "<=0.9.0, >=0.8", True),
        ("0.1.3", "~=0.1.0", True),
        ("0.2.0rc1", ">=0.1,<0.2", False),
        ("0.2.0rc1", ">=0.2.0rc1,<0.3", True),
        ("0.2.0.dev3", "<0.2", False),  # PEP 440: <0.2 excludes 0.2's own pre-releases
        ("0.1.0.post1", "==0.1.0.post1", True),
    ],
)
def test_satisfies_follows_pep_440(version, spec, expected):
    """Each clause is a PEP 440 specifier, pre-releases and post-releases included, and all must hold."""
    assert satisfies(version, spec) is expected


@pytest.mark.parametrize("spec", ["", "  ", ">=one", ">=1.0;<2", "=>1"])
def test_malformed_spec_is_a_value_error_naming_it(spec):
    """A malformed requirement raises ValueError naming it instead of passing."""
    with pytest.raises(ValueError, match="version"):
        satisfies("1.0", spec)


def test_pre_release_installed_version_never_raises_a_traceback():
    """A pre-release shared_core is compared, not crashed on: satisfied or one IncompatibleVersion line."""
    require(">=0.1", version="0.2.0rc1")
    with pytest.raises(IncompatibleVersion, match=r"0\.2\.0rc1"):
        require("<0.2", version="0.2.0rc1")
    with pytest.raises(ValueError, match="malformed version"):
        require(">=0.1", version="zero")


def test_require_names_both_versions_on_one_line():
    """An unmet requirement raises one line naming the installed version and the requirement."""
    with pytest.raises(IncompatibleVersion) as info:
        require(">=99", version="0.1.0")
    assert "0.1.0" in str(info.value) and ">=99" in str(info.value) and "\n" not in str(info.value)


def test_main_exit_codes(capsys):
    """The command exits 0 when satisfied, 1 when not (one line on stderr), 2 on bad usage."""
    assert main([f"=={__version__}"]) == 0
    assert main([">=99"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert main([]) == 2
