"""Tests for mllp.header's shapes: a message whose MSH differs from an earlier one only in
MSH-7 and MSH-10 is read from the earlier one's reading, and reads the same."""
from __future__ import annotations

import pytest

from mllp import header as header_module
from mllp.header import HeaderError, HeaderShape, first_segment, read_header, read_msh

MSH = (b"MSH|^~\\&|LAB|HOSP|ENG|HOSP|20240101120000||ORU^R01^ORU_R01|CTRL1|P|2.5|||AL|NE|"
       b"FRA|UNICODE UTF-8|FR\rPID|1||123\r")


def read_both(payload: bytes):
    """read_header's answer for ``payload`` (read twice, the second from its shape), and
    the full reading's, or the HeaderError each raised."""
    answers = []
    for read in (lambda: read_header(payload), lambda: read_header(payload),
                 lambda: read_msh(first_segment(payload))):
        try:
            answers.append(read())
        except HeaderError as error:
            answers.append((error.code, error.text, error.location))
    return answers


def test_a_second_message_of_a_shape_is_read_from_it():
    """If two messages differ only in MSH-7 and MSH-10, then the second is read from the
    first one's shape, and reads as the full reading reads it."""
    first = read_header(MSH)
    second_payload = MSH.replace(b"20240101120000", b"20250202", 1).replace(b"CTRL1", b" C2 ")
    second = read_header(second_payload)
    assert isinstance(first.shape, HeaderShape) and second.shape is first.shape
    assert second == read_msh(first_segment(second_payload))
    assert (second.control_id, second.message_datetime) == ("C2", "20250202")
    assert second.field(10) == " C2 " and second.field(7) == "20250202"
    assert first.control_id == "CTRL1"  # the first is not changed by the second


@pytest.mark.parametrize("changed", [
    (b"|LAB|", b"|LAB2|"), (b"ORU^R01^ORU_R01", b"ADT^A01"), (b"|2.5|", b"|2.3|"),
    (b"|AL|NE|", b"|NE|AL|"), (b"UNICODE UTF-8", b"8859/1"), (b"|FR\r", b"|EN\r"),
])
def test_any_other_field_makes_another_shape(changed):
    """If a message differs from an earlier one in a field other than MSH-7 and MSH-10,
    then it is not read from the earlier one's shape."""
    first = read_header(MSH)
    other = read_header(MSH.replace(*changed))
    assert other.shape is not first.shape
    assert other == read_msh(first_segment(MSH.replace(*changed)))


def test_another_field_separator_with_the_same_fields_is_another_shape():
    """If a message is an earlier one with another field separator, then it reads its own
    separator, not the earlier one's."""
    read_header(MSH)
    other = MSH.replace(b"|", b"#")
    assert read_header(other).field_separator == "#"
    assert read_header(other) == read_msh(first_segment(other))


@pytest.mark.parametrize("payload", [
    MSH.replace(b"CTRL1", b""),  # MSH-10 empty
    MSH.replace(b"CTRL1", b"   "),  # MSH-10 blank
    MSH.replace(b"CTRL1", b"C\xe91"),  # MSH-10 not ASCII: the full reading, latin-1 text
    MSH.replace(b"20240101120000", b"2024\xff"),
    MSH.replace(b"|^~\\&|", b"|^~\\|"),  # MSH-2 unusable
    MSH.replace(b"MSH|", b"MSHA"),  # MSH-1 a letter
    MSH.replace(b"ORU^R01^ORU_R01", b""),  # MSH-9 empty
    b"MSH|^~\\&|LAB|HOSP|ENG|HOSP|2024||ADT^A01|C|P\r",  # MSH-12 missing
    b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|C1|P|2.5\n",  # LF ended
    b"\r\nMSH|^~\\&|A|B|C|D|2024||ADT^A01|C1|P|2.5",  # blank line first, no end
    b"MSH|",
    b"PID|1||2|3|4|5|6|7|8|9|10\r",  # not MSH, yet eleven fields
])
def test_every_reading_agrees_with_the_full_one(payload):
    """If a header is read from its shape, or refused, then it is what the full reading
    makes of it or refuses, with the same error: whether its shape was known or not."""
    read_header(MSH)  # a shape every variant differs from in one field at most
    fresh, shaped, full = read_both(payload)
    assert fresh == shaped == full


def test_a_refused_header_makes_no_shape():
    """If a header is refused, then its shape is not kept: the next one is read in full
    and refused again."""
    bad = MSH.replace(b"|^~\\&|", b"|^^\\&|")
    for _ in range(2):
        with pytest.raises(HeaderError):
            read_header(bad)
    assert not any(key.startswith("MSH|^^") for key in header_module._SHAPES)


def test_shapes_are_bounded(monkeypatch):
    """If senders send more shapes than are kept, then the kept ones are dropped and the
    headers still read alike."""
    monkeypatch.setattr(header_module, "_SHAPES", {})
    monkeypatch.setattr(header_module, "_SHAPES_MAX", 3)
    for sender in range(10):
        payload = MSH.replace(b"|LAB|", b"|LAB%d|" % sender)
        assert read_header(payload) == read_msh(first_segment(payload))
        assert len(header_module._SHAPES) <= 3


def test_derived_values_are_kept_per_shape():
    """If a reader keeps a value on a shape, then the next message of that shape finds it,
    and a message of another shape does not."""
    first = read_header(MSH)
    first.shape.derived["test"] = "kept"
    assert read_header(MSH.replace(b"CTRL1", b"CTRL2")).shape.derived["test"] == "kept"
    assert "test" not in read_header(MSH.replace(b"|HOSP|ENG", b"|H2|ENG")).shape.derived
