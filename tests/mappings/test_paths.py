"""Tests for mappings.paths: the path grammar and get/set/delete on messages."""
from __future__ import annotations

import hl7
import pytest
from hypothesis import given, strategies as st

from mappings.message import NULL, HL7Message
from mappings.paths import (
    EVERY, MissingSegmentError, Path, PathError, delete, expand, get, get_encoded, get_one,
    parse_path, set_encoded, set_value,
)
from tests.mappings.test_message import decoded, sample_texts
from engine.synthetic import adt_message, oru_message

ADT = "\r".join([
    "MSH|^~\\&|GAM|CHU|AIG|CHU|20240312083015||ADT^A01^ADT_A01|CTRL1|P|2.5",
    "EVN||20240312083015",
    'PID|1||111^^^IPP&1.2.3&ISO^PI~222^^^INS&1.2.250&ISO^INS||DUPONT^Jean^^^^^L||19850714|""'
    "|||1 rue A\\S\\B^^Lyon",
    "PV1|1|I|CARD^101^1",
    "OBX|1|NM|GLU^Glucose||5.4|mmol/L",
    "OBX|2|NM|NA^Sodium||140",
    "OBX|3|ST|COM^Comment||Dupont \\T\\ Fils",
    "ZBE|MVT1^GAM|20240312||INSERT",
]) + "\r"


def message(text: str = ADT) -> HL7Message:
    return HL7Message.parse(text)


def values(text: str, path: str) -> list[str]:
    return get(message(text), parse_path(path))


@pytest.mark.parametrize("text, expected", [
    ("PID-5", Path("PID", None, 5)),
    ("PID-5.1", Path("PID", None, 5, None, 1)),
    ("PID-3[2].4.1", Path("PID", None, 3, 2, 4, 1)),
    ("PID-3[*].1", Path("PID", None, 3, EVERY, 1)),
    ("OBX[*]-5", Path("OBX", EVERY, 5)),
    ("OBX[2]-5", Path("OBX", 2, 5)),
    ("PV1-3.1", Path("PV1", None, 3, None, 1)),
    ("MSH-9.2", Path("MSH", None, 9, None, 2)),
    ("MSH-1", Path("MSH", None, 1)),
    ("ZBE-1", Path("ZBE", None, 1)),
    ("ZBE", Path("ZBE")),
    ("OBX[12]", Path("OBX", 12)),
    ("OBX[*]-3[10].2.11", Path("OBX", EVERY, 3, 10, 2, 11)),
])
def test_parse_every_form(text, expected):
    """If a path of any documented form is parsed, then its parts are read and it prints back."""
    path = parse_path(text)
    assert path == expected
    assert str(path) == text
    assert path.is_segment == (expected.field is None)


@pytest.mark.parametrize("text, column", [
    ("", 1), ("pid-5", 1), ("PI-5", 1), ("1ID-5", 1), ("PIDX-5", 4), ("PID-", 5), ("PID-0", 5),
    ("PID-05", 5), ("PID-5-1", 6), ("PID-5.", 7), ("PID-5.1.", 9), ("PID-5.1.1.1", 10),
    ("PID-5[", 7), ("PID-5[0]", 7), ("PID-5[2", 8), ("PID-5[x]", 7), ("OBX[]-5", 5),
    ("PID-5 ", 6), (" PID-5", 1), ("MSH-2.1", 5), ("MSH-1[1]", 5),
])
def test_parse_errors(text, column):
    """If a path breaks the grammar, then PathError names the text and the column."""
    with pytest.raises(PathError) as caught:
        parse_path(text)
    assert caught.value.column == column
    assert caught.value.text == text
    assert f"column {column}" in str(caught.value)


@pytest.mark.parametrize("text, column", [
    ("PID-" + "9" * 5000, 5), ("PID-1234567890", 5), ("PID-5." + "1" * 10, 7),
    ("OBX[" + "2" * 4400 + "]-5", 5)])
def test_huge_numbers_are_path_errors(text, column):
    """If a number has more digits than any message could need (even past the 4300 int()
    accepts), then it is a PathError with its column, not a bare ValueError."""
    with pytest.raises(PathError, match="too large") as caught:
        parse_path(text)
    assert caught.value.column == column


def test_dash_hint():
    """If components are separated by '-' as in HAPI, then the error says to use '.'."""
    with pytest.raises(PathError, match=r"separated by '\.'"):
        parse_path("PID-5-1")


@pytest.mark.parametrize("path, expected", [
    ("PID-5", ["DUPONT"]),
    ("PID-5.2", ["Jean"]),
    ("PID-5.7", ["L"]),
    ("PID-3[2].4.1", ["INS"]),
    ("PID-3[2].4.2", ["1.2.250"]),
    ("PID-3[*].1", ["111", "222"]),
    ("PID-3[*].5", ["PI", "INS"]),
    ("OBX[*]-5", ["5.4", "140", "Dupont & Fils"]),
    ("OBX[2]-5", ["140"]),
    ("OBX[*]-6", ["mmol/L"]),
    ("PV1-3.1", ["CARD"]),
    ("PV1-3", ["CARD"]),
    ("MSH-1", ["|"]),
    ("MSH-2", ["^~\\&"]),
    ("MSH-9", ["ADT"]),
    ("MSH-9.1", ["ADT"]),
    ("MSH-9.2", ["A01"]),
    ("MSH-10", ["CTRL1"]),
    ("ZBE-1", ["MVT1"]),
    ("ZBE-1.2", ["GAM"]),
    ("PID-11.1", ["1 rue A^B"]),
])
def test_get(path, expected):
    """If a path is read, then the values present there come back, unescaped, in order."""
    assert values(ADT, path) == expected


@pytest.mark.parametrize("path", [
    "PID-2", "PID-4", "PID-40", "PID-5[2]", "PID-5.3", "PID-5.9", "PID-3[3].1",
    "PID-3[1].4.4", "PID-2[*]", "OBX[4]-5", "ZFA-1", "ZFA[*]-1", "NK1-2.1",
])
def test_get_absent(path):
    """If a path names an empty, absent or missing part, then get gives [] and get_one None."""
    assert values(ADT, path) == []
    assert get_one(message(), parse_path(path)) is None


def test_get_null():
    """If a field holds the explicit null, then it is read as NULL, not as absent."""
    assert values(ADT, "PID-8") == [NULL]
    assert get_one(message(), parse_path("PID-8")) == NULL


def test_get_one_first():
    """If several values are present, then get_one gives the first."""
    assert get_one(message(), parse_path("OBX[*]-5")) == "5.4"
    assert get_one(message(), parse_path("PID-3[*].1")) == "111"
    assert get_one(message(), parse_path("PID-3[2]")) == "222"


def test_without_z_segment():
    """If the message has no Z-segment, then Z paths read nothing and the rest still works."""
    text = ADT.replace("ZBE|MVT1^GAM|20240312||INSERT\r", "")
    assert values(text, "ZBE-1") == []
    assert values(text, "PID-5") == ["DUPONT"]


def test_segment_path_has_no_value():
    """If get is given a segment path, then PathError."""
    with pytest.raises(PathError):
        get(message(), parse_path("ZBE"))


def test_set_value_simple():
    """If a value is set, then it reads back and only that part of the field changes."""
    m = message()
    set_value(m, parse_path("PID-5.2"), "Jeanne")
    set_value(m, parse_path("PV1-2"), "O")
    set_value(m, parse_path("MSH-9.2"), "A08")
    assert get(m, parse_path("PID-5.2")) == ["Jeanne"]
    assert m.segment("PID").field(5) == "DUPONT^Jeanne^^^^^L"
    assert m.segment("PV1").text() == "PV1|1|O|CARD^101^1"
    assert m.msh.field(9) == "ADT^A08^ADT_A01"


def test_set_value_escapes():
    """If a value holding delimiters is set, then the message holds it escaped."""
    m = message()
    set_value(m, parse_path("ZBE-4"), "A|B^C&D~E\\F")
    assert m.segment("ZBE").field(4) == "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F"
    assert get_one(m, parse_path("ZBE-4")) == "A|B^C&D~E\\F"


def test_set_value_creates_parts():
    """If a value is set past what is written, then repetitions and components are created."""
    m = message()
    set_value(m, parse_path("PID-3[3].4.2"), "9.9")
    set_value(m, parse_path("ZBE-9.2"), "x")
    assert m.segment("PID").repetitions(3)[2] == "^^^&9.9"
    assert m.segment("ZBE").text() == "ZBE|MVT1^GAM|20240312||INSERT|||||^x"


def test_set_value_every_repetition():
    """If a value is set through [*], then every existing repetition gets it."""
    m = message()
    set_value(m, parse_path("PID-3[*].5"), "XX")
    assert get(m, parse_path("PID-3[*].5")) == ["XX", "XX"]


def test_set_value_every_repetition_of_empty_field():
    """If [*] names the repetitions of an empty field, then nothing is written."""
    m = message()
    set_value(m, parse_path("PID-2[*]"), "X")
    assert m.to_text() == ADT


def test_set_value_every_segment():
    """If a value is set through OBX[*], then every OBX gets it; with no OBX, nothing happens."""
    m = message()
    set_value(m, parse_path("OBX[*]-11"), "F")
    assert get(m, parse_path("OBX[*]-11")) == ["F", "F", "F"]
    set_value(m, parse_path("NTE[*]-3"), "X")
    assert get(m, parse_path("NTE[*]-3")) == []


@pytest.mark.parametrize("path", ["ZFA-1", "OBX[4]-5", "NK1-2.1"])
def test_set_value_missing_segment(path):
    """If a value is set in a segment the message lacks, then MissingSegmentError names it."""
    with pytest.raises(MissingSegmentError) as caught:
        set_value(message(), parse_path(path), "X")
    assert caught.value.text == path
    assert caught.value.column is None


@pytest.mark.parametrize("path", ["MSH-1", "MSH-2"])
def test_set_delimiter_fields_refused(path):
    """If MSH-1 or MSH-2 is written or deleted, then PathError."""
    for write in (lambda m, p: set_value(m, p, "#"), delete):
        with pytest.raises(PathError):
            write(message(), parse_path(path))


def test_set_null():
    """If NULL is set, then the field holds "" and reads as NULL."""
    m = message()
    set_value(m, parse_path("PV1-2"), NULL)
    assert m.segment("PV1").field(2) == '""'
    assert get(m, parse_path("PV1-2")) == [NULL]


@pytest.mark.parametrize("path, pid", [
    ("PID-5", 'PID|1||111^^^IPP&1.2.3&ISO^PI~222^^^INS&1.2.250&ISO^INS||||19850714|""|||'
              "1 rue A\\S\\B^^Lyon"),
    ("PID-3[1]", 'PID|1||222^^^INS&1.2.250&ISO^INS||DUPONT^Jean^^^^^L||19850714|""|||'
                 "1 rue A\\S\\B^^Lyon"),
    ("PID-3[*].4.2", 'PID|1||111^^^IPP&&ISO^PI~222^^^INS&&ISO^INS||DUPONT^Jean^^^^^L||19850714|""|||'
                     "1 rue A\\S\\B^^Lyon"),
    ("PID-11", 'PID|1||111^^^IPP&1.2.3&ISO^PI~222^^^INS&1.2.250&ISO^INS||DUPONT^Jean^^^^^L||'
               '19850714|""'),
])
def test_delete_inside_segment(path, pid):
    """If a field, repetition or component is deleted, then it is emptied (a repetition is
    removed) and the segment re-joined."""
    m = message()
    delete(m, parse_path(path))
    assert m.segment("PID").text() == pid


@pytest.mark.parametrize("path, names", [
    ("ZBE", ["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "OBX"]),
    ("OBX[2]", ["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "ZBE"]),
    ("OBX", ["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "ZBE"]),
    ("OBX[*]", ["MSH", "EVN", "PID", "PV1", "ZBE"]),
])
def test_delete_segment(path, names):
    """If a segment path is deleted, then the segments it names are removed."""
    m = message()
    delete(m, parse_path(path))
    assert [s.name for s in m.segments()] == names
    if path == "OBX[2]":
        assert get(m, parse_path("OBX[*]-1")) == ["1", "3"]


@pytest.mark.parametrize("path", ["ZFA", "ZFA-1", "OBX[9]", "PID-30", "PID-3[5]", "PID-5.9"])
def test_delete_absent_does_nothing(path):
    """If what a path names is absent, then delete changes nothing."""
    m = message()
    delete(m, parse_path(path))
    assert m.to_text() == ADT


def test_delete_msh_refused():
    """If the MSH segment is deleted, then PathError."""
    with pytest.raises(PathError):
        delete(message(), parse_path("MSH"))


def test_encoded_copy_of_whole_field():
    """If a whole field is copied as encoded text, then its structure and escapes come along."""
    m = message()
    assert get_encoded(m, parse_path("PID-11")) == ["1 rue A\\S\\B^^Lyon"]
    assert get_encoded(m, parse_path("PID-3[*].4")) == ["IPP&1.2.3&ISO", "INS&1.2.250&ISO"]
    assert get_encoded(m, parse_path("PID-2")) == [""]
    assert get_encoded(m, parse_path("ZFA-1")) == []
    (text,) = get_encoded(m, parse_path("PID-11"))
    set_encoded(m, parse_path("ZBE-7"), text)
    assert get(m, parse_path("ZBE-7.1")) == ["1 rue A^B"]
    set_encoded(m, parse_path("PID-3[*].4"), "X&1")
    assert get(m, parse_path("PID-3[*].4.2")) == ["1", "1"]
    with pytest.raises(MissingSegmentError):
        set_encoded(m, parse_path("ZFA-1"), "x")


def test_expand():
    """If a path with [*] is expanded, then one concrete path per existing occurrence."""
    m = message()
    assert [str(p) for p in expand(m, parse_path("OBX[*]-5"))] == \
        ["OBX[1]-5", "OBX[2]-5", "OBX[3]-5"]
    assert [str(p) for p in expand(m, parse_path("PID-3[*].1"))] == \
        ["PID-3[1].1", "PID-3[2].1"]
    assert [str(p) for p in expand(m, parse_path("PID-2[*]"))] == []
    assert [str(p) for p in expand(m, parse_path("ZFA[*]-1"))] == []
    assert [str(p) for p in expand(m, parse_path("PV1-3"))] == ["PV1-3"]
    assert expand(m, parse_path("ZFA-3")) == []


# Paths compared with python-hl7's extract_field, as (segment, field, rep, comp, sub).
_ORACLE_PATHS = [
    ("MSH", 3, 1, 1, 1), ("MSH", 9, 1, 1, 1), ("MSH", 9, 1, 2, 1), ("MSH", 10, 1, 1, 1),
    ("MSH", 12, 1, 1, 1), ("PID", 3, 1, 1, 1), ("PID", 3, 1, 4, 2), ("PID", 3, 2, 1, 1),
    ("PID", 3, 2, 5, 1), ("PID", 5, 1, 1, 1), ("PID", 5, 1, 2, 1), ("PID", 5, 2, 1, 1),
    ("PID", 7, 1, 1, 1), ("PID", 8, 1, 1, 1), ("PID", 11, 1, 3, 1), ("PID", 13, 2, 3, 1),
    ("PV1", 2, 1, 1, 1), ("PV1", 3, 1, 1, 1), ("PV1", 3, 1, 4, 2), ("PV1", 19, 1, 1, 1),
    ("ZBE", 1, 1, 1, 1), ("ZBE", 4, 1, 1, 1), ("OBR", 4, 1, 2, 1), ("OBX", 3, 1, 1, 1),
    ("OBX", 5, 1, 1, 1),
]


def _oracle_texts() -> list[str]:
    texts = sample_texts() + [decoded(adt_message(7)), decoded(oru_message(8))]
    return [t for t in texts if "\n" not in t]


def _extract(message: hl7.Message, *address: int | str) -> str:
    """python-hl7's unescaped value, "" where it finds nothing (it raises past the end)."""
    try:
        return message.unescape(message.extract_field(*address))
    except IndexError:
        return ""


@pytest.mark.parametrize("text", _oracle_texts())
def test_get_agrees_with_python_hl7(text):
    """If a sample is read with our paths and with python-hl7, then the values agree."""
    ours = message(text)
    theirs = hl7.parse(text)
    compared = 0
    for name, field, rep, comp, sub in _ORACLE_PATHS:
        for occurrence in range(1, len(ours.segments(name)) + 1):
            path = parse_path(f"{name}[{occurrence}]-{field}[{rep}].{comp}.{sub}")
            expected = _extract(theirs, name, occurrence, field, rep, comp, sub)
            assert get(ours, path) == ([expected] if expected else []), str(path)
            compared += 1
    assert compared > 10


@given(st.text(alphabet="ab É|^~\\&\"", min_size=1, max_size=12),
       st.sampled_from(["PID-5.2", "PID-3[3].4.2", "ZBE-9", "OBX[2]-5", "PV1-3.1.1"]))
def test_set_then_get(value, path_text):
    """If any value is set at a path, then get_one reads the same value back and every other
    segment is written unchanged."""
    m = message()
    path = parse_path(path_text)
    set_value(m, path, value)
    assert get_one(m, path) == value
    others = [s for s in m.segments() if not s.changed]
    assert len(others) == len(m.segments()) - 1
    assert all(s.text() + "\r" in ADT for s in others)
