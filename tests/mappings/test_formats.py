"""
Tests for mappings.formats: dates, names, case and length, and the checks made at load.
"""
import pytest

from mappings.formats import (
    FORMATS, FormatError, build_format, compile_date_pattern, dtm_to_iso, format_dtm,
    iso_to_dtm, parse_dtm, title_case, to_ascii, trim, truncate)


def run(name, value, **params):
    return build_format(name, params)(value)


@pytest.mark.parametrize("dtm, iso", [
    ("2024", "2024"),
    ("202403", "2024-03"),
    ("20240312", "2024-03-12"),
    ("2024031210", "2024-03-12T10"),
    ("202403121015", "2024-03-12T10:15"),
    ("20240312101522", "2024-03-12T10:15:22"),
    ("20240312101522.1234", "2024-03-12T10:15:22.1234"),
    ("20240312101522+0100", "2024-03-12T10:15:22+01:00"),
    ("202403121015-0530", "2024-03-12T10:15-05:30"),
    ("20240229", "2024-02-29"),
])
def test_dtm_to_iso_keeps_precision(dtm, iso):
    """If a DTM has any precision, then the ISO text has the same one, offset included."""
    assert dtm_to_iso(dtm) == iso


def test_date_only_value_drops_its_offset():
    """If a date alone has an offset, then ISO 8601, which cannot say it, leaves it out."""
    assert dtm_to_iso("20240312+0100") == "2024-03-12"


@pytest.mark.parametrize("value, words", [
    ("20240230", "no day 30 in 2024-02"),
    ("20230229", "no day 29 in 2023-02"),
    ("20241301", "no month 13"),
    ("202400", "no month 00"),
    ("2024031224", "no hour 24"),
    ("202403121060", "no minute 60"),
    ("20240312101560", "no second 60"),
    ("2024031", "expected YYYY"),
    ("2024-03-12", "time zone"),
    ("20240312+01", "time zone"),
    ("20240312+0160", "time zone"),
    ("202403121015.5", "fraction"),
    ("20240312101522.12345", "fraction"),
    ("20240312101522.", "fraction"),
    ("２０２４", "expected YYYY"),
    ("abcd", "expected YYYY"),
    ("2024+\u00b2\u00b2\u00b2\u00b2", "time zone"),
    ("2024-\uff11\uff12\uff10\uff10", "time zone"),
])
def test_invalid_dtm_is_refused_naming_the_value(value, words):
    """If a DTM is malformed or names an impossible date, then the error names the value."""
    with pytest.raises(FormatError) as caught:
        dtm_to_iso(value)
    assert caught.value.value == value
    assert repr(value) in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("iso, dtm", [
    ("2024", "2024"),
    ("2024-03", "202403"),
    ("2024-03-12", "20240312"),
    ("2024-03-12T10", "2024031210"),
    ("2024-03-12T10:15", "202403121015"),
    ("2024-03-12T10:15:22", "20240312101522"),
    ("2024-03-12T10:15:22.5", "20240312101522.5"),
    ("2024-03-12T10:15:22.123456", "20240312101522.1234"),
    ("2024-03-12T10:15:22Z", "20240312101522+0000"),
    ("2024-03-12T10:15+01:00", "202403121015+0100"),
    ("2024-03-12T10:15-0530", "202403121015-0530"),
    ("2024-03-12T10:15:22+02", "20240312101522+0200"),
])
def test_iso_to_dtm(iso, dtm):
    """If an ISO 8601 value is given, then the DTM has its precision (fraction cut at 4)."""
    assert iso_to_dtm(iso) == dtm


@pytest.mark.parametrize("value", [
    "2024-02-30", "2024-3-12", "20240312", "2024-03T10:00", "2024-03-12T10:15:22.",
    "2024-03-12T1015", "2024-03-12T25:00", "2024-03-12T10:15+1:00", "", "2024-03-12T",
])
def test_invalid_iso_is_refused(value):
    """If an ISO value is malformed or impossible, then FormatError names it."""
    with pytest.raises(FormatError) as caught:
        iso_to_dtm(value)
    assert caught.value.value == value


def test_dtm_round_trips_through_iso():
    """If a DTM goes to ISO and back, then it is unchanged."""
    for value in ("1985", "19850714", "20240312101522.12-0300", "202403121015+0000"):
        assert iso_to_dtm(dtm_to_iso(value)) == value


def test_parse_dtm_parts():
    """If a DTM is parsed, then its parts, fraction and offset are as written."""
    dtm = parse_dtm("20240312101522.05+0100")
    assert (dtm.parts, dtm.fraction, dtm.offset, dtm.precision) == (
        ("2024", "03", "12", "10", "15", "22"), "05", "+0100", 6)


@pytest.mark.parametrize("pattern, value, expected", [
    ("%d/%m/%Y", "19850714", "14/07/1985"),
    ("%d/%m/%Y[ %H:%M]", "19850714", "14/07/1985"),
    ("%d/%m/%Y[ %H:%M]", "202403121015", "12/03/2024 10:15"),
    ("%Y%m%d", "20240312101522", "20240312"),
    ("%y-%m[-%d]", "202403", "24-03"),
    ("%H:%M:%S.%f%z", "20240312101522.5+0100", "10:15:22.5+0100"),
    ("%H:%M:%S[.%f]%z", "20240312101522", "10:15:22"),
    ("100%% %Y", "2024", "100% 2024"),
])
def test_dtm_pattern(pattern, value, expected):
    """If a pattern is applied, then directives are filled and short optional parts dropped."""
    assert run("dtm-pattern", value, pattern=pattern) == expected


def test_dtm_pattern_needs_the_precision_outside_brackets():
    """If a required directive needs more precision than the value, then FormatError says so."""
    with pytest.raises(FormatError, match=r"'19850714' is not precise enough for %H"):
        format_dtm("19850714", compile_date_pattern("%d/%m/%Y %H:%M"))


@pytest.mark.parametrize("pattern, words", [
    ("%d/%q", "unknown directive %q"), ("%d%", "unknown directive %"),
    ("[%d", "'['"), ("%d]", "'['"), ("[[%d]]", "no nesting"), ("", "'pattern'"),
])
def test_bad_patterns_are_refused_at_load(pattern, words):
    """If a pattern is unusable, then build_format refuses it with the reason."""
    with pytest.raises(FormatError) as caught:
        build_format("dtm-pattern", {"pattern": pattern})
    assert str(caught.value).startswith("format 'dtm-pattern': ") and words in str(caught.value)


def test_dtm_pattern_refuses_invalid_value():
    """If the value is no date, then the pattern step raises FormatError naming it."""
    with pytest.raises(FormatError, match="'20240230'"):
        run("dtm-pattern", "20240230", pattern="%d/%m/%Y")


@pytest.mark.parametrize("value, expected", [
    ("jean-pierre", "Jean-Pierre"),
    ("DE LA FONTAINE", "de La Fontaine"),
    ("LE NÔTRE", "Le Nôtre"),
    ("D'ORNANO", "d'Ornano"),
    ("d’estaing", "d’Estaing"),
    ("o'neil", "O'Neil"),
    ("l'hermite", "L'Hermite"),
    ("DU BELLAY", "du Bellay"),
    ("saint-exupéry", "Saint-Exupéry"),
    ("ÉLODIE", "Élodie"),
    ("LECŒUR", "Lecœur"),
    ("marie  claire", "Marie  Claire"),
    ("DESCHAMPS", "Deschamps"),
])
def test_title_french_names(value, expected):
    """If a name is title-cased, then words and parts are capitalised and particles are not."""
    assert run("title", value) == expected


def test_title_particles_are_a_parameter():
    """If the particles are given, then those words stay in lower case instead."""
    assert run("title", "LUDWIG VAN BEETHOVEN DE", particles=["van"]) \
        == "Ludwig van Beethoven De"
    assert title_case("VAN DER BERG", ("van", "der")) == "van der Berg"


def test_upper_and_lower():
    """If upper or lower is asked, then accents are kept and ß becomes SS."""
    assert run("upper", "Lefèvre Straße") == "LEFÈVRE STRASSE"
    assert run("lower", "LEFÈVRE") == "lefèvre"


@pytest.mark.parametrize("value, expected", [
    ("Hélène LEFÈVRE", "Helene LEFEVRE"),
    ("LECŒUR Æsa Øre Łódź", "LECOEUR AEsa Ore Lodz"),
    ("Jean-Noël d’Aÿ", "Jean-Noel d'Ay"),
    ("ﬁne ²", "fine 2"),
    ("plain", "plain"),
])
def test_ascii(value, expected):
    """If accents and ligatures are present, then the ASCII spelling replaces them."""
    assert run("ascii", value) == expected


def test_ascii_replacement():
    """If a character has no ASCII spelling, then the replacement stands for it."""
    assert to_ascii("a→b 王") == "a?b ?"
    assert run("ascii", "a→b", replacement="") == "ab"


def test_trim():
    """If blanks surround or split a value, then trim removes them, collapse joins words."""
    assert run("trim", "  Jean   Pierre \t") == "Jean   Pierre"
    assert run("trim", "  Jean   Pierre \t", collapse=True) == "Jean Pierre"
    assert trim("x") == "x"


def test_pad():
    """If a value is shorter than length, then it is filled on the side asked, never cut."""
    assert run("pad", "42", length=5, side="left", fill="0") == "00042"
    assert run("pad", "ab", length=4) == "ab  "
    assert run("pad", "abcdef", length=4) == "abcdef"


def test_truncate():
    """If a value is longer than length, then it is cut, never between a letter and its accent."""
    assert run("truncate", "LEFÈVRE", length=4) == "LEFÈ"
    assert run("truncate", "abc", length=5) == "abc"
    assert truncate("LEFE\u0300VRE", 4) == "LEF"
    assert truncate("LEFE\u0300VRE", 5) == "LEFE\u0300"


@pytest.mark.parametrize("name, params", [
    ("upper", {}), ("lower", {}), ("title", {}), ("ascii", {}), ("trim", {}),
    ("pad", {"length": 3}), ("truncate", {"length": 3}), ("dtm-to-iso", {}),
    ("iso-to-dtm", {}), ("dtm-pattern", {"pattern": "%Y"}),
])
@pytest.mark.parametrize("value", ["", '""'])
def test_empty_and_null_pass_through(name, params, value):
    """If the value is empty or the HL7 null, then every format returns it unchanged."""
    assert run(name, value, **params) == value


def test_every_registered_format_is_tested():
    """If a format is added to the registry, then this module's list must name it."""
    assert sorted(FORMATS) == sorted([
        "upper", "lower", "title", "ascii", "trim", "pad", "truncate", "dtm-to-iso",
        "iso-to-dtm", "dtm-pattern"])


@pytest.mark.parametrize("name, params, message", [
    ("uper", {}, "unknown format 'uper' (did you mean 'upper'?)"),
    ("pad", {}, "format 'pad': missing parameter 'length'"),
    ("pad", {"length": 2, "lenght": 3}, "format 'pad': unknown parameter 'lenght' "
                                        "(did you mean 'length'?)"),
    ("upper", {"length": 3}, "format 'upper': unknown parameter 'length'"),
    ("pad", {"length": "10"}, "'length' must be a whole number of at least 1, not '10'"),
    ("pad", {"length": True}, "'length' must be a whole number"),
    ("truncate", {"length": 0}, "not 0"),
    ("pad", {"length": 2, "side": "centre"}, "'side' must be left or right"),
    ("pad", {"length": 2, "fill": "00"}, "'fill' must be one character"),
    ("trim", {"collapse": "yes"}, "'collapse' must be true or false"),
    ("ascii", {"replacement": "é"}, "'replacement' must be ASCII"),
    ("title", {"particles": "de"}, "'particles' must be a list"),
    ("title", {"particles": ["de", 3]}, "'particles' must be a list"),
])
def test_bad_names_and_params_are_refused_at_load(name, params, message):
    """If a format or a parameter is wrong, then build_format says which and why."""
    with pytest.raises(FormatError) as caught:
        build_format(name, params)
    assert message in str(caught.value)


def test_build_format_without_params():
    """If no params are given, then the defaults apply."""
    assert build_format("title")("jean") == "Jean"
