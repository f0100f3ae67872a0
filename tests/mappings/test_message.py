"""Tests for mappings.message: the lazy, mutable message view and its exact round trip."""
from __future__ import annotations

from pathlib import Path as FilePath

import pytest
from hypothesis import given, strategies as st

from engine.synthetic import adt_message, oru_message
from mappings.escaping import Delimiters
from mappings.message import NULL, HL7Message, MessageError, is_null

SAMPLES = FilePath(__file__).resolve().parents[2] / "samples"
_CODECS = {"8859/1": "latin-1", "UNICODE UTF-8": "utf-8"}

ADT = "\r".join([
    "MSH|^~\\&|GAM|CHU|AIG|CHU|20240312083015||ADT^A01^ADT_A01|CTRL1|P|2.5",
    "EVN||20240312083015",
    'PID|1||111^^^IPP&1.2.3&ISO^PI~222^^^INS&1.2.250&ISO^INS||DUPONT^Jean^^^^^L||19850714|""'
    "|||1 rue A\\S\\B^^Lyon",
    "PV1|1|I|CARD^101^1^^^^",
    "ZBE|MVT1^GAM|20240312||INSERT",
]) + "\r"


def decoded(payload: bytes) -> str:
    """A sample's text, decoded with the charset its MSH-18 names."""
    msh = payload.split(b"\r", 1)[0].split(b"|")
    charset = msh[17].decode("ascii") if len(msh) > 17 else ""
    return payload.decode(_CODECS.get(charset, "latin-1"))


def sample_texts() -> list[str]:
    names = ["adt", "oru", "mdm"]
    return [decoded(path.read_bytes()) for name in names
            for path in sorted((SAMPLES / name).glob("*.hl7"))]


def test_samples_found():
    """If the samples directory is read, then every ADT and ORU sample is there."""
    assert len(sample_texts()) >= 7


@pytest.mark.parametrize("text", sample_texts())
def test_sample_round_trip(text):
    """If a sample is parsed and written with no change, then the text is the same."""
    assert HL7Message.parse(text).to_text() == text


@pytest.mark.parametrize("payload", [
    adt_message(1), adt_message(2, trigger="A03"), adt_message(3, trigger="A08",
                                                              encoding="8859/1"),
    oru_message(4), oru_message(5, results=1),
])
def test_synthetic_round_trip(payload):
    """If a synthetic message is parsed and written with no change, then the text is the same."""
    text = decoded(payload)
    assert HL7Message.parse(text).to_text() == text


def test_reading_changes_nothing():
    """If every field of every segment is read, then the message is written back unchanged."""
    message = HL7Message.parse(ADT)
    for segment in message.segments():
        for number in range(1, segment.field_count() + 3):
            segment.get(number, 2, 3, 2)
            segment.node(number)
    assert message.to_text() == ADT
    assert not any(s.changed for s in message.segments())


_VALUE = st.text(alphabet="ab É|^~\\&\"", max_size=8)
_SEGMENT = st.builds(
    lambda name, fields: "|".join([name, *fields]),
    st.sampled_from(["PID", "PV1", "OBX", "ZBE", "NTE"]), st.lists(_VALUE, max_size=6))
_TERMINATOR = st.sampled_from(["\r", "\n", "\r\n"])


@given(st.lists(st.tuples(_SEGMENT, _TERMINATOR), max_size=6), _TERMINATOR, st.booleans(),
       st.booleans(), st.integers(0, 2))
def test_generated_round_trip(body, msh_end, last_terminated, uniform, blanks):
    """If any message (any terminators, blank lines, no final CR) is parsed, then written, then
    the text is the same."""
    msh = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5"
    parts = [msh + msh_end] + ["\r" * blanks]
    parts += [raw + (msh_end if uniform else end) for raw, end in body]
    text = "".join(parts)
    if not last_terminated:
        text = text.rstrip("\r\n")
    assert HL7Message.parse(text).to_text() == text


def test_delimiters_from_msh():
    """If MSH declares unusual delimiters, then fields are split with those."""
    message = HL7Message.parse("MSH#$*!@#A#B\rPID#1##X$Y!S!Z*W@V\r")
    assert message.delimiters == Delimiters.from_msh("#", "$*!@")
    pid = message.segment("PID")
    assert pid.get(3, 1, 2) == "Y$Z"
    assert pid.get(3, 2, 1, 2) == "V"


def test_msh_numbering():
    """If MSH is read, then MSH-1 is the separator, MSH-2 the encoding characters, MSH-n the
    n-th field counting the separator."""
    msh = HL7Message.parse(ADT).msh
    assert msh.field(1) == "|"
    assert msh.field(2) == "^~\\&"
    assert msh.get(2) == "^~\\&"
    assert msh.field(3) == "GAM"
    assert msh.field(9) == "ADT^A01^ADT_A01"
    assert msh.get(9, 1, 1) == "ADT"
    assert msh.get(9, 1, 2) == "A01"
    assert msh.field(10) == "CTRL1"
    assert msh.field_count() == 12
    assert msh.get(2, 1, 2) == ""


def test_other_segment_numbering():
    """If a segment other than MSH is read, then field n is the n-th after the name."""
    pid = HL7Message.parse(ADT).segment("PID")
    assert pid.field(1) == "1"
    assert pid.field(2) == ""
    assert pid.get(7) == "19850714"
    assert pid.field_count() == 11
    assert pid.field(40) == ""


def test_field_zero_refused():
    """If field 0 is asked for, then IndexError (numbers start at 1)."""
    with pytest.raises(IndexError):
        HL7Message.parse(ADT).segment("PID").field(0)


def test_delimiter_fields_not_written():
    """If MSH-1 or MSH-2 is written, then MessageError: the delimiters are fixed."""
    msh = HL7Message.parse(ADT).msh
    for number in (1, 2):
        with pytest.raises(MessageError):
            msh.set(number, "x")


def test_null_kept_and_reported():
    """If a field holds the explicit null "", then it reads as NULL, distinct from empty."""
    pid = HL7Message.parse(ADT).segment("PID")
    assert pid.get(8) == NULL == '""'
    assert is_null(pid.get(8))
    assert not is_null(pid.get(2))
    assert not is_null(None)


def test_null_written():
    """If NULL is written, then the field holds two double quotes."""
    message = HL7Message.parse(ADT)
    message.segment("PV1").set(2, NULL)
    assert message.segment("PV1").text() == 'PV1|1|""|CARD^101^1^^^^'


def test_get_unescapes():
    """If a component holds an escape sequence, then get gives the unescaped value."""
    pid = HL7Message.parse(ADT).segment("PID")
    assert pid.get(11) == "1 rue A^B"
    assert pid.node(11, 1, 1) == "1 rue A\\S\\B"


def test_set_escapes_and_changes_one_segment():
    """If a value with delimiters is set, then it is escaped and only that segment changes."""
    message = HL7Message.parse(ADT)
    message.segment("PID").set(5, "O'NEIL & SONS|X", 1, 1)
    lines = message.to_text().split("\r")
    assert lines[2].split("|")[5] == "O'NEIL \\T\\ SONS\\F\\X^Jean^^^^^L"
    assert lines[:2] + lines[3:] == ADT.split("\r")[:2] + ADT.split("\r")[3:]
    assert message.segment("PID").get(5) == "O'NEIL & SONS|X"


def test_set_pads_missing_parts():
    """If a value is set past the end of the segment, field, or component, then empty parts
    are added before it."""
    message = HL7Message.parse(ADT)
    zbe = message.segment("ZBE")
    zbe.set(9, "x", 2, 3, 2)
    assert zbe.text() == "ZBE|MVT1^GAM|20240312||INSERT|||||~^^&x"


def test_set_trims_what_it_rebuilt():
    """If a field is changed, then trailing empty parts of that field and of the segment are
    trimmed, and other fields keep their text exactly."""
    message = HL7Message.parse(ADT + "NTE|1|||\r")
    nte = message.segment("NTE")
    nte.set(1, "2")
    assert nte.text() == "NTE|2"
    pv1 = message.segment("PV1")
    pv1.set(1, "2")
    assert pv1.text() == "PV1|2|I|CARD^101^1^^^^"
    pv1.set(3, "", 1, 3)
    assert pv1.text() == "PV1|2|I|CARD^101"


def test_set_node_whole_field_and_remove_repetition():
    """If a whole field is replaced and a repetition removed, then later ones move up."""
    message = HL7Message.parse(ADT)
    pid = message.segment("PID")
    pid.set_node(5, "MARTIN^Paul~DURAND")
    assert pid.repetitions(5) == ["MARTIN^Paul", "DURAND"]
    pid.remove_repetition(3, 1)
    assert pid.get(3) == "222"
    assert pid.repetitions(2) == []


def test_segments_by_name_and_occurrence():
    """If segments are looked up by name, then they come in message order, Z-segments too."""
    message = HL7Message.parse(ADT + "OBX|1\rOBX|2\r")
    assert [s.field(1) for s in message.segments("OBX")] == ["1", "2"]
    assert message.segment("OBX", 2).field(1) == "2"
    assert message.segment("OBX", 3) is None
    assert message.segment("ZBE").get(1) == "MVT1"
    assert message.segment("ZFA") is None
    assert [s.name for s in message.segments()] == \
        ["MSH", "EVN", "PID", "PV1", "ZBE", "OBX", "OBX"]


def test_blank_lines_are_not_segments():
    """If the text has blank lines, then no lookup returns them but writing keeps them."""
    text = "\nMSH|^~\\&|A\n\nPID|1\n"
    message = HL7Message.parse(text)
    assert [s.name for s in message.segments()] == ["MSH", "PID"]
    assert message.to_text() == text


def test_add_segment_at_end_and_after():
    """If segments are added at the end and after another, then they sit there with the
    message's terminator."""
    message = HL7Message.parse(ADT.replace("\r", "\n"))
    message.add_segment(None, "ZFD", ["", "INSI"])
    message.add_segment(message.segment("PID"), "PD1", ["", "", "X^Y"])
    text = message.to_text()
    assert text.endswith("ZBE|MVT1^GAM|20240312||INSERT\nZFD||INSI\n")
    assert "\nPID|" in text and "^Lyon\nPD1|||X^Y\nPV1|" in text


def test_add_segment_to_unterminated_message():
    """If the last segment has no terminator, then an added one goes after a new terminator
    and stays unterminated."""
    message = HL7Message.parse(ADT.rstrip("\r"))
    message.add_segment(None, "ZZZ")
    assert message.to_text() == ADT + "ZZZ"


@pytest.mark.parametrize("name", ["MSH", "PI", "pid", "PID1", "P-D"])
def test_add_segment_bad_name(name):
    """If an added segment's name is not three capitals or digits, or is MSH, then refused."""
    with pytest.raises(MessageError):
        HL7Message.parse(ADT).add_segment(None, name)


def test_remove_segment():
    """If segments are removed, then the others keep their order and terminators."""
    message = HL7Message.parse(ADT.rstrip("\r"))
    message.remove_segment(message.segment("EVN"))
    message.remove_segment(message.segment("ZBE"))
    assert message.to_text() == "\r".join(ADT.split("\r")[i] for i in (0, 2, 3))
    with pytest.raises(MessageError):
        message.remove_segment(message.msh)
    other = HL7Message.parse(ADT).segment("PID")
    with pytest.raises(MessageError):
        message.remove_segment(other)


@pytest.mark.parametrize("text", ["", "PID|1\r", "MSH", "MSH|^~\r", "\r\rEVN|1\r",
                                  "MSH|^~\\R|A\r", "MSHA^~\\&A\r", "MSH|^~1&|A\r"])
def test_not_a_message(text):
    """If the text does not start with an MSH that declares delimiters, then MessageError."""
    with pytest.raises(MessageError):
        HL7Message.parse(text)
