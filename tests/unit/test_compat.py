"""shared_core.compat: a service's supported shared_core versions, checked at container start."""

import pytest

from shared_core import __version__
from shared_core.compat import IncompatibleVersion, main, require, satisfies


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("0.1.0", ">=0.1,<0.2", True),
        ("0.2.0", ">=0.1,<0.2", False),
        ("1.4", "==1.4.0", True),
        ("1.4.1", "!=1.4.1", False),
        ("2.0.0", ">1.9.9", True),
        ("0.9", "<=0.9.0, >=0.8", True),
    ],
)
def test_satisfies_compares_dotted_numbers(version, spec, expected):
    """Each clause compares dotted numbers, and all clauses must hold."""
    assert satisfies(version, spec) is expected


@pytest.mark.parametrize("spec", ["", "~=1.0", ">=one", ">=1.0;<2"])
def test_malformed_spec_is_a_value_error_naming_it(spec):
    """A malformed requirement raises ValueError naming it instead of passing."""
    with pytest.raises(ValueError, match="version"):
        satisfies("1.0", spec)


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
