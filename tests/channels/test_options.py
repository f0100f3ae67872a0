"""Option resolution shared by every connector: defaults, unknown names, required, choices."""
from __future__ import annotations

import pytest

from channels.options import label, require_positive, resolve
from engine.interfaces import ConnectorSpec, OptionSpec

SPEC = ConnectorSpec("destination", "demo", options=(
    OptionSpec("host", "str", required=True),
    OptionSpec("timeout", "duration", default=10),
    OptionSpec("mode", "str", default="a", choices=("a", "b")),
))


def test_defaults_fill_what_is_absent_or_null():
    """If an option is absent or None, then its spec's default is used."""
    assert resolve(SPEC, "x", {"host": "h", "timeout": None}) == \
        {"host": "h", "timeout": 10, "mode": "a"}


def test_unknown_option_is_refused_with_the_known_ones():
    """If an option is misspelt, then the error names it and lists the known ones."""
    with pytest.raises(ValueError, match=r'destination "x" \(demo\): unknown option\(s\) '
                                         r"tiemout; known: host, mode, timeout"):
        resolve(SPEC, "x", {"host": "h", "tiemout": 3})


def test_missing_required_option_is_refused():
    """If a required option is missing, then the error names it."""
    with pytest.raises(ValueError, match='missing required option "host"'):
        resolve(SPEC, "x", {})


def test_value_outside_choices_is_refused():
    """If a value is not one of the choices, then the error lists them."""
    with pytest.raises(ValueError, match="mode must be one of a, b, got 'c'"):
        resolve(SPEC, "x", {"host": "h", "mode": "c"})


@pytest.mark.parametrize("value", [0, -1, None])
def test_require_positive_refuses_zero_negative_and_missing(value):
    """If a timeout is not above zero, then the connector is refused."""
    with pytest.raises(ValueError, match="timeout must be more than 0"):
        require_positive(SPEC, "x", {"timeout": value}, "timeout")


def test_label_names_role_name_and_type():
    assert label(SPEC, "lab") == 'destination "lab" (demo)'
