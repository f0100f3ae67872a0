"""Tests for mllp.ack, checked against python-hl7 as an independent reader."""
from __future__ import annotations

import dataclasses

import hl7
import pytest

from mllp import ack
from mllp.ack import (
    ENHANCED,
    ORIGINAL,
    AckResult,
    HL7Error,
    accept_ack_wanted,
    ack_code,
    ack_mode_for,
    build_ack,
    build_nak_without_header,
    escape,
    parse_ack,
    unescape,
)
from mllp.header import HeaderError, read_header

SAMPLES = {
    "a01": "ipf/pix-feed/A01.hl7",
    "a08": "ipf/pix-feed/A08.hl7",
    "a40": "ipf/pix-feed/A40.hl7",
    "a40_latin1": "ipf/pix-pdq/iti8-a40-iso-8859-1.hl7",
    "oru": "ipf/oru/oru-r01-25.hl7",
    "oru_fr": "ans/oru-cr-bio-v2.1/message_ORU_CR_Bio_INIT_N1_N3.hl7",
    "pam_fr": "ans/pam-fr-sgl/admission.er7",
}


def oracle(payload: bytes, codec: str = "latin-1") -> hl7.Message:
    assert payload.endswith(b"\r")
    return hl7.parse(payload.decode(codec).rstrip("\r"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_ack_on_real_samples(hl7_sample, name):
    """If a real message is acknowledged, then python-hl7 reads an ACK echoing its MSH."""
    header = read_header(hl7_sample(SAMPLES[name]))
    payload = build_ack(header, "AA", control_id="ACK-1", timestamp="20240102030405")
    codec = "utf-8" if header.charset == "UNICODE UTF-8" else "latin-1"
    message = oracle(payload, codec)
    msh, msa = message.segment("MSH"), message.segment("MSA")
    assert str(msh(3)) == header.receiving_application
    assert str(msh(4)) == header.receiving_facility
    assert str(msh(5)) == header.sending_application
    assert str(msh(6)) == header.sending_facility
    assert str(msh(7)) == "20240102030405"
    assert str(msh(9)) == f"ACK^{header.trigger_event}^ACK"
    assert str(msh(10)) == "ACK-1"
    assert str(msh(11)) == header.processing_id
    assert str(msh(12)) == header.field(12)
    assert (str(msa(1)), str(msa(2))) == ("AA", header.control_id)
    if header.charset:
        assert str(msh(18)) == header.charset
    assert parse_ack(payload) == AckResult("AA", header.control_id, "", ())


def test_latin1_names_come_back_as_sent(hl7_sample):
    """If the sender's names are ISO-8859-1, then the ACK holds the same bytes swapped."""
    header = read_header(hl7_sample(SAMPLES["a40_latin1"]))
    payload = build_ack(header, "AA", control_id="1", timestamp="2024")
    assert payload.startswith(b"MSH|^~\\&|BL\xc4H|BL\xd6\xd6\xd6H-1|ICW-MPI|ENTERPRISE|")


def test_err_segment_v25(hl7_sample):
    """If a v2.5 message gets an error, then ERR-2/3/4/8 hold location, code, severity, text."""
    header = read_header(hl7_sample(SAMPLES["oru_fr"]))
    errors = [HL7Error(101, "PID-3 is empty", "PID^1^3"),
              HL7Error(103, "OBX-2 'ZZ' | unknown", "OBX^2^2", severity="W")]
    payload = build_ack(header, "AE", text="2 problems", errors=errors,
                        control_id="9", timestamp="2024")
    message = oracle(payload, "utf-8")
    assert message.extract_field("MSA", 1, 3) == "2 problems"
    assert message.extract_field("ERR", 1, 2, 1, 1) == "PID"
    assert message.extract_field("ERR", 1, 2, 1, 3) == "3"
    assert message.extract_field("ERR", 1, 3, 1, 1) == "101"
    assert message.extract_field("ERR", 1, 3, 1, 2) == "Required field missing"
    assert message.extract_field("ERR", 1, 3, 1, 3) == "HL70357"
    assert message.extract_field("ERR", 1, 4) == "E"
    assert message.extract_field("ERR", 2, 4) == "W"
    assert message.extract_field("ERR", 2, 8) == "OBX-2 'ZZ' | unknown"
    result = parse_ack(payload)
    assert result.error_codes == (101, 103) and result.code == "AE" and not result.accepted


def test_err_segment_before_v25(hl7_sample):
    """If a v2.3.1 message gets an error, then ERR-1 carries location and code."""
    header = read_header(hl7_sample(SAMPLES["a01"]))
    payload = build_ack(header, "AR", errors=[HL7Error(207, "store down", "PID^1^3")],
                        text="store down", control_id="9", timestamp="2024")
    message = oracle(payload)
    err = message.segment("ERR")
    assert str(err(1)) == "PID^1^3^207&Application internal error&HL70357"
    assert message.extract_field("ERR", 1, 1, 1, 4, 1) == "207"
    assert parse_ack(payload) == AckResult("AR", "371601", "store down", (207,))


def test_message_type_before_231():
    """If the message is v2.2, then MSH-9 has no message structure component."""
    header = read_header(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|5|P|2.2")
    payload = build_ack(header, "AA", control_id="1", timestamp="2024")
    assert oracle(payload).extract_field("MSH", 1, 9) == "ACK"
    assert str(oracle(payload).segment("MSH")(9)) == "ACK^A01"


def test_other_separators_are_kept():
    """If the message uses other delimiters, then the ACK uses them and escapes with them."""
    header = read_header(b"MSH#$%!*#A#B#C#D#T##ADT$A01#9#P#2.5")
    payload = build_ack(header, "AE", text="a#b", errors=[HL7Error(101, "x", "PID^1^3")],
                        control_id="1", timestamp="T")
    assert payload.split(b"\r")[0] == b"MSH#$%!*#C#D#A#B#T##ACK$A01$ACK#1#P#2.5"
    assert b"MSA#AE#9#a!F!b" in payload
    assert b"ERR##PID$1$3#101$Required field missing$HL70357#E####x" in payload
    assert parse_ack(payload) == AckResult("AE", "9", "a#b", (101,))


def test_sending_application_and_facility_override():
    """If who answers is given, then MSH-3/MSH-4 say it, components joined with the message's
    own separator and delimiters in them escaped; MSH-5/MSH-6 still name the sender."""
    header = read_header(b"MSH#$%!*#A#B#C#D#T##ADT$A01#9#P#2.5")
    payload = build_ack(header, "AA", control_id="1", timestamp="T",
                        sending_application="AIG$X", sending_facility="CHU^1.2.250^ISO")
    assert payload.split(b"\r")[0] == b"MSH#$%!*#AIG!S!X#CHU$1.2.250$ISO#A#B#T##ACK$A01$ACK#1#P#2.5"


def test_nak_without_header_names_who_answers_when_asked():
    """If MSH is unreadable but who answers is given, then MSH-3/MSH-4 of the NAK say it."""
    payload = build_nak_without_header(HL7Error(100, "no MSH", "MSH^1"), "N1", "T",
                                       sending_application="AIG", sending_facility="CHU^X")
    assert str(oracle(payload).segment("MSH")(3)) == "AIG"
    assert str(oracle(payload).segment("MSH")(4)) == "CHU^X"


def test_charset_override():
    """If a charset is given, then MSH-18 says it and the ACK is encoded with it."""
    header = read_header(b"MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.5")
    payload = build_ack(header, "AE", text="\u00e9chec", control_id="1", timestamp="T",
                        charset="UNICODE UTF-8")
    assert b"|UNICODE UTF-8\r" in payload and "\u00e9chec".encode() in payload
    assert parse_ack(payload).text == "\u00e9chec"


def test_escape_round_trip():
    """If text holds every delimiter and a newline, then it is escaped and comes back."""
    text = "a|b^c~d\\e&f\rg"
    escaped = escape(text, "|", "^~\\&")
    assert escaped == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\X0D\\g"
    assert unescape(escaped, "|", "^~\\&") == text
    assert hl7.parse("MSH|^~\\&|" + escaped).unescape(escaped) == text


def test_truncation_character_is_escaped():
    """If the encoding characters include the v2.7 truncation '#', then it is escaped as P."""
    assert escape("1#2", "|", "^~\\&#") == "1\\P\\2"


def test_ack_modes(hl7_sample):
    """If MSH-15 or MSH-16 is valued, then the mode is enhanced and codes are CA/CE/CR."""
    assert ack_mode_for(read_header(hl7_sample(SAMPLES["a01"]))) == ORIGINAL
    assert ack_mode_for(read_header(hl7_sample(SAMPLES["oru"]))) == ENHANCED
    assert [ack_code(o, ORIGINAL) for o in ("accept", "error", "reject")] == ["AA", "AE", "AR"]
    assert [ack_code(o, ENHANCED) for o in ("accept", "error", "reject")] == ["CA", "CE", "CR"]


def test_enhanced_ack_on_oru(hl7_sample):
    """If the ORU asks for enhanced mode, then its commit ACK carries CA and is accepted."""
    header = read_header(hl7_sample(SAMPLES["oru"]))
    payload = build_ack(header, ack_code("accept", ack_mode_for(header)),
                        control_id="1", timestamp="T")
    message = oracle(payload)
    assert message.extract_field("MSA", 1, 1) == "CA"
    assert message.extract_field("MSA", 1, 2) == "20070701132554000008"
    assert parse_ack(payload).accepted


@pytest.mark.parametrize("condition, wanted", [
    ("", [True, True, True]), ("AL", [True, True, True]), ("NE", [False, False, False]),
    ("ER", [False, True, True]), ("SU", [True, False, False]),
])
def test_accept_ack_wanted(condition, wanted):
    """If MSH-15 sets a condition, then an accept ACK is wanted only for matching outcomes."""
    header = read_header(f"MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.5|||{condition}|AL".encode())
    assert [accept_ack_wanted(header, o) for o in ("accept", "error", "reject")] == wanted


def test_nak_without_header():
    """If MSH is unreadable, then the NAK is v2.5 with default delimiters and an empty MSA-2."""
    error = HL7Error(100, "first segment is 'PID'", "MSH^1")
    payload = build_nak_without_header(error, "N1", "20240101")
    message = oracle(payload)
    assert message.extract_field("MSH", 1, 12) == "2.5"
    assert message.extract_field("MSH", 1, 10) == "N1"
    assert message.extract_field("MSA", 1, 1) == "AR"
    assert message.extract_field("MSA", 1, 2) == ""
    assert message.extract_field("ERR", 1, 3, 1, 1) == "100"
    assert parse_ack(payload) == AckResult("AR", "", "first segment is 'PID'", (100,))


@pytest.mark.parametrize("payload, who", [
    (b"MSH|^~\\&|SND|SF|RCV|RF|20240101|||C-1|P|2.5", "MSH-9 empty"),
    (b"MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|C-1|P|", "MSH-12 empty"),
    (b"MSH|^~\\R|SND|SF|RCV|RF|20240101||ADT^A01|C-1|P|2.5", "MSH-2 invalid"),
])
def test_refusal_of_unreadable_header_can_be_matched(payload, who):
    """If MSH cannot be read strictly but MSH-10 can, then the AR echoes it in MSA-2 and
    swaps MSH-3 to 6, so that the sender can tell which message was refused."""
    error = HL7Error(101, who, "MSH^1^9")
    message = oracle(build_nak_without_header(error, "N1", "2024", payload=payload))
    assert message.extract_field("MSA", 1, 2) == "C-1"
    assert [message.extract_field("MSH", 1, n) for n in (3, 4, 5, 6)] == \
        ["RCV", "RF", "SND", "SF"]
    assert message.extract_field("MSH", 1, 12) == "2.5"


def test_refusal_in_enhanced_mode_is_cr():
    """If an unreadable message asks for enhanced mode (MSH-15), then the refusal is CR."""
    payload = b"MSH|^~\\&|SND|SF|RCV|RF|20240101|||C-1|P|2.5|||AL|NE"
    nak = build_nak_without_header(HL7Error(101, "MSH-9 empty"), "N1", "2024", payload=payload)
    assert parse_ack(nak).code == "CR"


@pytest.mark.parametrize("version, expected", [
    ("2.3", 207), ("2.5", 207), ("2.6", 207), ("2.7", 104), ("2.8", 104), ("2.9", 104)])
def test_value_too_long_exists_from_v27(version, expected):
    """If 104 is reported in a version whose table 0357 lacks it, then 207 is said instead."""
    header = read_header(f"MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|{version}".encode())
    payload = build_ack(header, "AR", errors=[HL7Error(104, "too long")], control_id="1",
                        timestamp="T")
    assert parse_ack(payload).error_codes == (expected,)


def test_v24_errors_share_one_err_segment():
    """If a v2.4 ACK carries two errors, then they are two repetitions of ERR-1 in one ERR."""
    header = read_header(b"MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.4")
    payload = build_ack(header, "AE", text="two", control_id="1", timestamp="T",
                        errors=[HL7Error(101, "a", "PID^1^3"), HL7Error(102, "b", "PID^1^7")])
    assert payload.count(b"\rERR|") == 1
    assert b"ERR|PID^1^3^101&Required field missing&HL70357~PID^1^7^102&Data type error&HL70357" \
        in payload
    assert parse_ack(payload) == AckResult("AE", "1", "two", (101, 102))


def test_parse_ack_needs_no_msh9_msh10_msh12():
    """If a peer's ACK lacks MSH-9, MSH-10 and MSH-12, then its MSA still decides."""
    assert parse_ack(b"MSH|^~\\&\rMSA|AA|C-1").code == "AA"


@pytest.mark.parametrize("text", ["\\XZZ\\", "\\X-1\\", "a\\b"])
def test_accept_with_malformed_escape_is_accepted(text):
    """If an AA's MSA-3 or ERR-8 holds a malformed escape, then it is read as accepted with
    the text as written, never an error (defect found by a hostile peer)."""
    for ack in (f"MSH|^~\\&|||||||ACK|1|P|2.5\rMSA|AA|C-1|{text}",
                f"MSH|^~\\&|||||||ACK|1|P|2.5\rMSA|AA|C-1\rERR||||E||||{text}"):
        result = parse_ack(ack.encode())
        assert (result.accepted, result.control_id_echoed, result.text) == (True, "C-1", text)


def test_error_from_header_error():
    """If a HeaderError is turned into an HL7Error, then code, text and location carry over."""
    error = HL7Error.from_exception(HeaderError(101, "MSH-10 is empty", "MSH^1^10"))
    assert error == HL7Error(101, "MSH-10 is empty", "MSH^1^10", "E")


def test_severity_is_checked():
    """If a severity is not E/W/I/F, then HL7Error refuses it."""
    with pytest.raises(ValueError):
        HL7Error(207, "x", severity="X")


def test_parse_ack_of_reference_ack(hl7_sample):
    """If the ANS reference ACK is read, then its MSA code and echoed id come out."""
    result = parse_ack(hl7_sample("ans/oru-cr-bio-v2.1/ack.hl7"))
    assert result == AckResult("AA", "015", "", ())


def test_parse_ack_reads_err_in_a_query_response(hl7_sample):
    """If a response holds an ERR with ERR-3 code 204, then it is reported."""
    result = parse_ack(hl7_sample("ipf/pix-query/err-1_Response.hl7"))
    assert (result.code, result.control_id_echoed, result.error_codes) == ("AE", "10501108", (204,))


def test_parse_ack_without_msa():
    """If the answer has no MSA, then parse_ack raises a segment sequence error."""
    with pytest.raises(HeaderError) as caught:
        parse_ack(b"MSH|^~\\&|A|B|C|D|T||ACK|1|P|2.5\r")
    assert caught.value.code == 100


def test_table_0357_constants():
    """If the named table 0357 codes drift, then ERR segments say the wrong thing."""
    assert (ack.MESSAGE_ACCEPTED, ack.SEGMENT_SEQUENCE, ack.REQUIRED_FIELD_MISSING,
            ack.DATA_TYPE, ack.TABLE_VALUE_NOT_FOUND, ack.VALUE_TOO_LONG) == \
        (0, 100, 101, 102, 103, 104)
    assert (ack.UNSUPPORTED_MESSAGE_TYPE, ack.UNSUPPORTED_EVENT, ack.UNSUPPORTED_PROCESSING_ID,
            ack.UNSUPPORTED_VERSION, ack.UNKNOWN_KEY, ack.DUPLICATE_KEY,
            ack.APPLICATION_RECORD_LOCKED, ack.APPLICATION_INTERNAL_ERROR) == \
        (200, 201, 202, 203, 204, 205, 206, 207)


@pytest.mark.parametrize("accept", ["", "AL", "NE", "ER", "SU", "XX"])
@pytest.mark.parametrize("application", ["", "AL", "NE", "ER", "SU", "XX"])
def test_answers_for_is_what_the_rules_say(accept, application):
    """If a header's MSH-15 and MSH-16 are read once into its answers, then they say for
    every outcome what ack_mode_for, accept_ack_wanted, ack_code and application_ack_wanted
    say, and the next header of the same shape gets the same answers without reading."""
    msh = f"MSH|^~\\&|A|B|C|D|T||ADT^A01|{{}}|P|2.5|||{accept}|{application}\r"
    header = read_header(msh.format("1").encode())
    answers = ack.answers_for(header)
    mode = ack.ack_mode_for(header)
    assert answers.mode == mode
    for outcome in ack.OUTCOMES:
        wanted = ack.accept_ack_wanted(header, outcome)
        assert answers.accept[outcome] == (ack.ack_code(outcome, mode) if wanted else None)
        assert (outcome in answers.application) == ack.application_ack_wanted(header, outcome)
    assert ack.answers_for(read_header(msh.format("2").encode())) is answers
    assert ack.answers_for(dataclasses.replace(header, shape=None)) == answers
