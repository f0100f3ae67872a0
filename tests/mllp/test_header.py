"""Tests for mllp.header: eager MSH reading and MSH-18 decoding."""
from __future__ import annotations

import dataclasses

import hl7
import pytest

from mllp.header import (
    CHARSETS,
    EncodingError,
    HeaderError,
    MSHHeader,
    decode_payload,
    locate,
    read_header,
    read_header_leniently,
    resolve_codec,
)

PIX_A01 = "ipf/pix-feed/A01.hl7"
PIX_A08 = "ipf/pix-feed/A08.hl7"
PIX_A40 = "ipf/pix-feed/A40.hl7"
A40_LATIN1 = "ipf/pix-pdq/iti8-a40-iso-8859-1.hl7"
ORU = "ipf/oru/oru-r01-25.hl7"
PAM_FR = "ans/pam-fr-sgl/admission.er7"  # LF separated, UTF-8, MSH-12 with components
ALL_SAMPLES = [PIX_A01, PIX_A08, PIX_A40, A40_LATIN1, ORU, PAM_FR,
               "ans/oru-cr-bio-v2.1/message_ORU_CR_Bio_INIT_N1_N3.hl7",
               "ipf/pix-pdq/iti-8.hl7", "ipf/pdq/PDQ_Maximal_Query.hl7"]


def oracle_msh(payload: bytes) -> hl7.Segment:
    """MSH as python-hl7 reads it (it wants CR-separated text)."""
    text = payload.decode("latin-1").replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    return hl7.parse(text).segment("MSH")


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_fields_agree_with_python_hl7(hl7_sample, name):
    """If a real sample is read, then every MSH-n matches python-hl7's reading of it."""
    payload = hl7_sample(name)
    header = read_header(payload)
    msh = oracle_msh(payload)
    for number in range(1, len(msh)):
        assert header.field(number) == str(msh(number)), number
    assert header.control_id == str(msh(10))
    assert header.message_type == str(msh(9))


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_header_is_the_dataclass_s_own(hl7_sample, name):
    """If a header is read (made without MSHHeader's __init__), then it equals the one its
    constructor builds from the same values, hashes alike, and stays frozen."""
    header = read_header(hl7_sample(name))
    built = MSHHeader(**{f.name: getattr(header, f.name) for f in dataclasses.fields(MSHHeader)})
    assert set(vars(header)) == {f.name for f in dataclasses.fields(MSHHeader)}
    assert header == built and hash(header) == hash(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.control_id = "changed"


def test_pix_a01(hl7_sample):
    """If the PIX feed A01 is read, then each named field holds its MSH-n (MSH-1 is '|')."""
    header = read_header(hl7_sample(PIX_A01))
    assert header.field_separator == "|" and header.field(1) == "|"
    assert header.encoding_characters == "^~\\&"
    assert (header.sending_application, header.sending_facility) == ("ICW_MPI", "ICW")
    assert header.receiving_application == "PIXV3FeedTransformer"
    assert header.message_datetime == "20100716125745"
    assert (header.message_type, header.message_code, header.trigger_event) == \
        ("ADT^A01", "ADT", "A01")
    assert (header.control_id, header.processing_id, header.version) == ("371601", "P^T", "2.3.1")
    assert (header.accept_ack_type, header.application_ack_type, header.charset) == ("", "", "")


def test_pix_a08_and_a40(hl7_sample):
    """If the A08 and A40 feeds are read, then their control ids and events are found."""
    a08 = read_header(hl7_sample(PIX_A08))
    a40 = read_header(hl7_sample(PIX_A40))
    assert (a08.trigger_event, a08.control_id) == ("A08", "387352")
    assert (a40.trigger_event, a40.control_id, a40.processing_id) == \
        ("A40", "00000000000396814", "P")


def test_oru_enhanced_mode_fields(hl7_sample):
    """If the ORU declares MSH-15/16, then both are read and MSH-3 keeps its components."""
    header = read_header(hl7_sample(ORU))
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "NE")
    assert header.sending_application == "Lab^2.16.840.1.113883.19.3.1.6^ISO"
    assert header.message_type == "ORU^R01^ORU_R01"
    assert header.control_id == "20070701132554000008"


def test_french_pam_lf_separated(hl7_sample):
    """If segments end with LF and MSH-12 has components, then version is its first one."""
    header = read_header(hl7_sample(PAM_FR))
    assert header.version == "2.5" and header.field(12) == "2.5^FRA^2.11"
    assert header.charset == "UNICODE UTF-8"
    assert header.message_type == "ADT^A01^ADT_A01"


def test_latin1_names_round_trip(hl7_sample):
    """If MSH holds ISO-8859-1 bytes and no MSH-18, then they are read as ISO-8859-1."""
    header = read_header(hl7_sample(A40_LATIN1))
    assert header.receiving_application == "BL\u00c4H"
    assert header.receiving_facility == "BL\u00d6\u00d6\u00d6H-1"


def test_latin1_sample_decodes_with_latin1_default(hl7_sample):
    """If the channel default is ISO-8859-1, then the ISO-8859-1 sample decodes."""
    payload = hl7_sample(A40_LATIN1)
    text = decode_payload(payload, read_header(payload), "8859/1")
    assert "BL\u00c4H" in text


def test_latin1_sample_fails_as_utf8(hl7_sample):
    """If ISO-8859-1 bytes are decoded as UTF-8, then the error names charset, offset and field."""
    payload = hl7_sample(A40_LATIN1)
    with pytest.raises(EncodingError) as caught:
        decode_payload(payload, read_header(payload), "utf-8")
    error = caught.value
    assert error.code == 102 and error.charset == "utf-8"
    assert error.offset == payload.index(b"\xc4")
    assert error.location == "MSH^1^5"
    assert str(error.offset) in error.text and "utf-8" in error.text


def test_utf8_sample_decodes(hl7_sample):
    """If MSH-18 says UTF-8, then the payload is decoded as UTF-8 whatever the default."""
    payload = hl7_sample(PAM_FR)
    assert decode_payload(payload, read_header(payload), "ascii") == payload.decode("utf-8")


def test_unknown_charset_is_table_value_error():
    """If MSH-18 names an unknown charset, then EncodingError 103 points at MSH-18."""
    payload = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||KLINGON\rPID|1"
    with pytest.raises(EncodingError) as caught:
        decode_payload(payload, read_header(payload), "utf-8")
    assert caught.value.code == 103 and caught.value.location == "MSH^1^18"
    assert "KLINGON" in caught.value.text
    assert isinstance(caught.value, HeaderError)


def test_bad_byte_in_later_segment_is_located():
    """If a bad byte is in the second PID's fifth field, then the location says so."""
    payload = "MSH|^~\\&|A||||||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|1\rPID|2||||".encode()
    payload += b"\xff"
    with pytest.raises(EncodingError) as caught:
        decode_payload(payload, read_header(payload), "utf-8")
    assert caught.value.location == "PID^2^5"
    assert locate(payload, 4) == "MSH^1^2"


def test_crlf_separator():
    """If segments end with CRLF, then MSH stops before the CR."""
    header = read_header(b"MSH|^~\\&|A||||||ADT^A01|7|P|2.4\r\nEVN|A01\r\n")
    assert header.version == "2.4" and header.control_id == "7"


def test_other_separators():
    """If a message uses other delimiters, then fields are split on its own separator."""
    header = read_header(b"MSH#$%!*#A#B#C#D#T##ADT$A01#9#P#2.5")
    assert header.field_separator == "#" and header.component_separator == "$"
    assert header.subcomponent_separator == "*" and header.trigger_event == "A01"


def test_leading_blank_lines_are_skipped():
    """If a payload starts with a stray CR or LF, then MSH is still found."""
    assert read_header(b"\r\nMSH|^~\\&|||||||ADT^A01|7|P|2.5").control_id == "7"


@pytest.mark.parametrize("payload, code, location", [
    (b"PID|1\rMSH|^~\\&", 100, "MSH^1"),
    (b"", 100, "MSH^1"),
    (b"MSH", 102, "MSH^1^1"),
    (b"MSHA^~\\&|", 102, "MSH^1^1"),
    (b"MSH|^~|A", 102, "MSH^1^2"),
    (b"MSH|^^\\&|A", 102, "MSH^1^2"),
    (b"MSH|^~\\&|A|||||||", 101, "MSH^1^9"),
    (b"MSH|^~\\&|A||||||ADT^A01||P|2.5", 101, "MSH^1^10"),
    (b"MSH|^~\\&|A||||||ADT^A01|1|P|", 101, "MSH^1^12"),
])
def test_header_errors(payload, code, location):
    """If MSH is missing, malformed or lacks a required field, then the 0357 code says which."""
    with pytest.raises(HeaderError) as caught:
        read_header(payload)
    assert (caught.value.code, caught.value.location) == (code, location)


def test_charsets_table():
    """If a table 0211 name is looked up, then it maps to a working ASCII-compatible codec."""
    for name, codec in CHARSETS.items():
        assert "MSH|".encode(codec) == b"MSH|", name
    assert CHARSETS["8859/1"] == "latin-1" and CHARSETS["UNICODE UTF-8"] == "utf-8"
    assert "UNICODE UTF-16" not in CHARSETS


def test_resolve_codec():
    """If a default charset is an HL7 or a Python name, then both resolve; junk raises."""
    assert resolve_codec("8859/15") == "iso8859-15"
    assert resolve_codec("latin-1") == "iso8859-1"
    with pytest.raises(LookupError):
        resolve_codec("no-such-codec")


@pytest.mark.parametrize("payload", [
    b"MSH|^~\\&|SND|SF|RCV|RF|20240101|||C-1|P|2.5",  # MSH-9 empty
    b"MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|C-1|P|",  # MSH-12 empty
])
def test_lenient_reader_reads_what_strict_refuses(payload):
    """If MSH-9 or MSH-12 is empty, then the lenient reader still gives MSH-3 to 6, MSH-10."""
    header = read_header_leniently(payload)
    assert (header.sending_application, header.sending_facility, header.receiving_application,
            header.receiving_facility, header.control_id) == ("SND", "SF", "RCV", "RF", "C-1")
    assert (header.field_separator, header.encoding_characters) == ("|", "^~\\&")


@pytest.mark.parametrize("encoding", [b"^~\\", b"^~\\R", b"^~\\&&"])
def test_lenient_reader_with_invalid_msh2_escapes_into_default_delimiters(encoding):
    """If MSH-2 is invalid, then the fields are read on MSH-1 and its first character, and
    given in the default delimiters, anything else in them escaped."""
    payload = b"MSH|" + encoding + b"|SND^1.2&3|SF~X|RCV|RF|20240101||ADT^A01|C-1|P|2.5"
    header = read_header_leniently(payload)
    assert (header.field_separator, header.encoding_characters) == ("|", "^~\\&")
    assert header.sending_application == "SND^1.2\\T\\3"
    assert header.sending_facility == "SF\\R\\X"
    assert (header.trigger_event, header.control_id, header.version) == ("A01", "C-1", "2.5")


@pytest.mark.parametrize("payload", [b"", b"PID|1\rMSH|^~\\&|A", b"MSH", b"MSHA^~\\&A1A"])
def test_lenient_reader_gives_an_empty_header_when_msh1_is_unusable(payload):
    """If there is no MSH or its MSH-1 is unusable, then every field is empty, delimiters
    are the defaults."""
    header = read_header_leniently(payload)
    assert (header.field_separator, header.encoding_characters) == ("|", "^~\\&")
    assert header.fields == ("|", "^~\\&") and header.control_id == ""


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_lenient_reader_agrees_with_strict_on_samples(hl7_sample, name):
    """If read_header accepts a real message, then the lenient reader reads the same."""
    payload = hl7_sample(name)
    assert read_header_leniently(payload) == read_header(payload)


@pytest.mark.parametrize("valid, invalid", [
    (b"MSH|^~\\&#|A|B|||20240101||ADT^A01|1|P|2.7\r",
     b"MSH|^~\\&#X|A|B|||20240101||ADT^A01|1|P|2.7\r"),  # same first six bytes, six characters
    (b"MSH|^~\\&|A|B|||20240101||ADT^A01|1|P|2.5\r",
     b"MSH|^~\\&&|A|B|||20240101||ADT^A01|1|P|2.5\r"),  # a repeated character
])
def test_separators_read_before_do_not_excuse_bad_ones(valid, invalid):
    """If a valid MSH-1/MSH-2 was read (and remembered), then MSH-2 that only starts the
    same way is still refused, every time."""
    for _ in range(2):
        assert read_header(valid).encoding_characters in ("^~\\&#", "^~\\&")
        with pytest.raises(HeaderError):
            read_header(invalid)


@pytest.mark.parametrize("charset", sorted(CHARSETS) + ["", "NOT-A-CHARSET", " 8859/1 "])
def test_an_ascii_msh_reads_as_decoded_with_its_charset(charset):
    """The ASCII shortcut of _decoded_fields gives what decoding with MSH-18's codec gives."""
    from mllp.header import _decoded_fields, header_codec

    segment = (b"MSH|^~\\&|A^B|F|R|RF|20240101||ADT^A01|ID1|P|2.5|||AL|NE||"
               + charset.encode("ascii") + b"~8859/1|EXTRA")
    fields, found = _decoded_fields(segment, "|", "^~\\&")
    text = segment.decode(header_codec(charset.strip()))
    assert fields == ("|",) + tuple(text.split("|")[1:])
    assert found == charset.strip()
