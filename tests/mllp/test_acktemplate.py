"""Tests for mllp.acktemplate: a template's ACK is byte for byte build_ack's."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mllp.ack import build_ack
from mllp.acktemplate import AckTemplates
from mllp.header import HeaderError, read_header, read_header_leniently

HEADERS = [
    b"MSH|^~\\&|LAB|HOSP|ENGINE|SITE|20240101120000||ADT^A01^ADT_A01|MSG1|P|2.5",
    b"MSH|^~\\&|LAB^1.2.3^ISO|HOSP|||20240101120000||ADT^A08|MSG2|P^T|2.3",  # no structure
    b"MSH|^~\\&|LAB|HOSP|ENGINE|SITE|20240101120000||ORU^R01^ORU_R01|X-9|P|2.7||||||"
    b"UNICODE UTF-8",
    b"MSH|^~\\&|LAB|H\xe9P|ENGINE|SITE|20240101120000||ADT^A01|M 3|P|2.5^FRA^2.11|||AL|NE||"
    b"8859/1",
    b"MSH#^~\\&#LAB#HOSP#ENG#SITE#20240101##ADT^A04#id4#P#2.4",  # another field separator
    b"MSH|^~\\&|LAB|HOSP|ENGINE|SITE|20240101120000||ADT^A01|MSG5|P|2.5|||NE|AL",
]


@pytest.mark.parametrize("segment", HEADERS)
@pytest.mark.parametrize("code", ["AA", "CA", "AE"])
@pytest.mark.parametrize("names", [(None, None), ("AIGUILLAGE", "CHU^1.2.250^ISO")])
def test_a_template_writes_what_build_ack_writes(segment, code, names):
    header = read_header(segment + b"\rPID|1||42\r")
    templates = AckTemplates()
    for control_id, timestamp in (("ACK1", "20240101120000"), ("ACK22", "20240101120001")):
        made = templates.build(header, code, control_id=control_id, timestamp=timestamp,
                               sending_application=names[0], sending_facility=names[1])
        assert made == build_ack(header, code, control_id=control_id, timestamp=timestamp,
                                 sending_application=names[0], sending_facility=names[1])


def test_one_template_serves_messages_that_differ_in_their_own_id_and_time():
    templates = AckTemplates()
    first = read_header(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|one|P|2.5\r")
    second = read_header(b"MSH|^~\\&|A|B|C|D|20250202||ADT^A01|two|P|2.5\r")
    templates.build(first, "AA", control_id="ACK1", timestamp="1")
    made = templates.build(second, "AA", control_id="ACK2", timestamp="2")
    assert made == build_ack(second, "AA", control_id="ACK2", timestamp="2")
    assert b"|two" in made and b"one" not in made
    assert len(templates._templates) == 1


def test_values_a_template_cannot_hold_are_built_the_plain_way():
    templates = AckTemplates()
    header = read_header(b"MSH|^~\\&|A\x00T\x00|B|C|D|20240101||ADT^A01|one|P|2.5\r")
    assert templates.build(header, "AA", control_id="ACK1", timestamp="T") == \
        build_ack(header, "AA", control_id="ACK1", timestamp="T")
    plain = read_header(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|one|P|2.5\r")
    odd_id = "ACK|1"  # would need escaping in MSH-10
    assert templates.build(plain, "AA", control_id=odd_id, timestamp="T") == \
        build_ack(plain, "AA", control_id=odd_id, timestamp="T")


def test_the_cache_is_bounded():
    templates = AckTemplates(limit=2)
    for sender in ("A", "B", "C", "D"):
        header = read_header(f"MSH|^~\\&|{sender}|F|C|D|2024||ADT^A01|1|P|2.5\r".encode())
        assert templates.build(header, "AA", control_id="ACK1", timestamp="T") == \
            build_ack(header, "AA", control_id="ACK1", timestamp="T")
    assert len(templates._templates) == 2


def test_an_empty_control_id_is_answered_as_build_ack_answers_it():
    """A lenient header of an MSH without MSH-10: build_ack drops MSA-2 as a trailing empty
    field, which a template cut at MSA-2 would keep as ``MSA|AA|``."""
    header = read_header_leniently(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\r")
    assert header.control_id == ""
    templates = AckTemplates()
    made = templates.build(header, "AA", control_id="ACK1", timestamp="T")
    assert made == build_ack(header, "AA", control_id="ACK1", timestamp="T")
    assert made.endswith(b"\rMSA|AA\r")


_FIELD = st.lists(st.sampled_from(["A", "1", " ", "^", "~", "&", "\\", "|", "#", "*", "\\F\\",
                                   "\\X41\\", "é", "\x85", "\x00"]), max_size=5).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(separator=st.sampled_from(["|", "#", "*", "!"]),
       encoding=st.sampled_from(["^~\\&", "^~\\&#", "$%@!", "^~\\"]),
       names=st.lists(_FIELD, min_size=5, max_size=5), control=_FIELD,
       version=st.sampled_from(["", "2.1", "2.3", "2.3.1", "2.5", "2.5^FRA^2.11", "2.7", "2.8",
                                "x"]),
       acks=st.sampled_from([("", ""), ("AL", "NE"), ("NE", "AL"), ("ER", "")]),
       charset=st.sampled_from(["", "8859/1", "UNICODE UTF-8", "UNICODE", "8859/15", "ASCII"]),
       end=st.sampled_from([b"\r", b"\n", b"\r\n", b""]), code=st.sampled_from(["AA", "CA"]),
       ours=st.sampled_from([(None, None), ("ME", "SITE^1.2^ISO")]), lenient=st.booleans())
def test_any_header_gets_build_acks_bytes(separator, encoding, names, control, version, acks,
                                          charset, end, code, ours, lenient):
    """Odd separators, escapes, NULs, short or absent fields, character sets, versions and
    segment ends: one cache shared by all examples (a key that forgot a value would hand
    one header another's template) gives what build_ack gives, byte for byte."""
    fields = [encoding, *names[:4], "20240101", "", f"ADT^{names[4]}", control, "P", version,
              "", "", *acks, "", charset]
    payload = ("MSH" + separator + separator.join(fields)).encode("latin-1") + end + b"PID|1"
    try:
        header = read_header_leniently(payload) if lenient else read_header(payload)
    except HeaderError:
        return
    for control_id, timestamp in (("ACK7", "20240101120000"), ("ACK|8", "1")):
        arguments = dict(control_id=control_id, timestamp=timestamp,
                         sending_application=ours[0], sending_facility=ours[1])
        assert _SHARED.build(header, code, **arguments) == build_ack(header, code, **arguments)


_SHARED = AckTemplates(limit=100_000)
