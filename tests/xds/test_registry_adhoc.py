"""Parameter values of stored queries, as pure functions: quoted strings, numbers, lists."""
from __future__ import annotations

import pytest

from xds.metadata.errors import MetadataError
from xds.registry.adhoc import Parameters, parse_value


@pytest.mark.parametrize("text, values", [
    ("'a'", ["a"]),
    ("('a','b')", ["a", "b"]),
    ("( 'a' , 'b' )", ["a", "b"]),
    ("'it''s'", ["it's"]),
    ("('x,y')", ["x,y"]),
    ("20221016161616", ["20221016161616"]),
    ("(1, 2)", ["1", "2"]),
    ("st3498702^^^&1.3.6.1.4.1.21367.2005.3.7&ISO", ["st3498702^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"]),
])
def test_parse_value(text, values):
    """If a Value holds a string, a number or a list, then its values come out unquoted."""
    assert parse_value(text) == values


@pytest.mark.parametrize("text", ["'open", "'a' 'b'", "'a','b'"])
def test_parse_value_refuses(text):
    """If a Value is malformed, then XDSRegistryError names it."""
    with pytest.raises(MetadataError) as caught:
        parse_value(text, "$X")
    assert caught.value.errors[0].error_code == "XDSRegistryError"
    assert "$X" in caught.value.errors[0].code_context


def test_parameters_reads():
    """If parameters are read, then lists flatten (OR), Slots stay groups (AND), a short
    status gets its URN, and one_of wants exactly one."""
    params = Parameters({"$a": [["1", "2"], ["3"]], "$s": [["Approved"]], "$b": [["x"]]})
    assert params.values("$a") == ["1", "2", "3"] and params.groups("$a") == [["1", "2"], ["3"]]
    assert params.statuses("$s") == ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]
    assert params.single("$b") == "x" and params.single("$none") is None
    assert params.one_of("$b", "$none") == ("$b", ["x"])
    for call, code in ((lambda: params.single("$a"), "XDSStoredQueryParamNumber"),
                       (lambda: params.one_of("$a", "$b"), "XDSStoredQueryParamNumber"),
                       (lambda: params.one_of("$y", "$z"), "XDSStoredQueryMissingParam"),
                       (lambda: params.values("$y", required=True), "XDSStoredQueryMissingParam")):
        with pytest.raises(MetadataError) as caught:
            call()
        assert caught.value.errors[0].error_code == code
