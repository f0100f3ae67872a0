"""
Every kind of ACK the wire layer builds, validated by hl7apy at its strictest level for the
version of the message acknowledged (v2.3, v2.5, v2.8).

hl7apy reads the message structure from MSH-9.3, which v2.3 does not have (``ACK^A01``), so
v2.3 ACKs are checked segment by segment and then as the ``ACK`` structure, both strictly.
"""
from __future__ import annotations

import itertools
import os
import tempfile

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message, parse_segments
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mllp.ack import HL7Error, build_ack, build_nak_without_header, parse_ack
from mllp.framing import FrameDecoder, encode_frame
from mllp.header import read_header
from mllp.protocol import MLLPServerFactory

STRICT = VALIDATION_LEVEL.STRICT
VERSIONS = ["2.3", "2.5", "2.8"]
INBOUND = "MSH|^~\\&|SND^1.2.3^ISO|SF|RCV|RF|20240101||ADT^A01{structure}|C-1|P|{version}{tail}\r" \
          "EVN|A01\rPID|1||123^^^HOSP^PI\r"


def inbound(version: str, *, enhanced: bool = False) -> bytes:
    structure = "" if version == "2.3" else "^ADT_A01"
    tail = "|||AL|NE" if enhanced else ""
    return INBOUND.format(version=version, structure=structure, tail=tail).encode()


def validate(payload: bytes, version: str) -> None:
    """Raise unless hl7apy, strictly for ``version``, accepts the ACK ``payload``."""
    problems = validation_problems(payload, version)
    if problems:
        raise ValidationError("; ".join(problems))


# hl7apy lists table 0396's "HL7nnnn" (an HL7 table, nnnn its number) literally, so it
# warns about every "HL70357" in ERR-3.3, which is what the standard asks for.
FALSE_WARNINGS = {"Warning: Value HL70357 not in table HL70396 in element ERR_3.CWE_3"}


def validation_problems(payload: bytes, version: str) -> list[str]:
    """Every error and warning hl7apy's strict validation reports (it raises only the first),
    but the :data:`FALSE_WARNINGS`.

    Parsing errors (a field or segment the version does not allow) are raised as they come.
    """
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.txt")
        try:
            _parsed(payload, version).validate(report_file=report)
        except ValidationError:
            pass
        with open(report) as lines:
            return [line.rstrip("\n") for line in lines
                    if line.rstrip("\n") not in FALSE_WARNINGS]


def _parsed(payload: bytes, version: str) -> Message:
    text = payload.decode("latin-1").rstrip("\r")
    if version != "2.3":
        message = parse_message(text, validation_level=STRICT, find_groups=True)
        assert message.version == version and message.name == "ACK"
    else:
        message = Message("ACK", version=version, validation_level=STRICT)
        segments = parse_segments(text, version=version, validation_level=STRICT)
        message.msh = segments[0]
        for segment in segments[1:]:
            message.add(segment)
    return message


ERRORS = [
    (),
    (HL7Error(101, "PID-3 is required", "PID^1^3"),),
    (HL7Error(207, "the message could not be stored"),),
    (HL7Error(104, "MLLP frame too large"),),
    (HL7Error(102, "bad date", "PID^1^7"), HL7Error(103, "unknown sex", "PID^1^8", "W")),
]
TEXTS = ["", "duplicate of message 12, not processed again", "a|b^c\rd"]
CODES = ["AA", "AE", "AR", "CA", "CE", "CR"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_ack_validates_for_its_version(version):
    """If any code, text and errors are acknowledged, then the ACK is valid in that version."""
    header = read_header(inbound(version))
    for code, text, errors in itertools.product(CODES, TEXTS, ERRORS):
        payload = build_ack(header, code, text=text, errors=errors, control_id="ACK7",
                            timestamp="20240102030405", sending_application="AIG^1.2^ISO")
        validate(payload, version)
        result = parse_ack(payload)
        assert (result.code, result.control_id_echoed) == (code, "C-1")
        assert text in result.text


UNREADABLE = {
    "MSH-9 empty": "MSH|^~\\&|SND|SF|RCV|RF|20240101|||C-1|P|{version}\r",
    "MSH-12 empty": "MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|C-1|P|\r",
    "MSH-2 invalid": "MSH|^~\\|SND|SF|RCV|RF|20240101||ADT^A01^ADT_A01|C-1|P|{version}\r",
    "MSH-2 a letter": "MSH|^~\\R|SND|SF|RCV|RF|20240101||ADT^A01^ADT_A01|C-1|P|{version}\r",
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_refusal_of_unreadable_header_validates(version, case):
    """If MSH cannot be read strictly, then the AR echoes MSA-2 and names, and validates.

    From v2.6 MSH-9.2 (the trigger) is required, and a refusal of a message without MSH-9
    has none to echo: hl7apy's only complaint is then that one, and it is checked to be.
    """
    payload = UNREADABLE[case].format(version=version).encode()
    nak = build_nak_without_header(HL7Error(101, "MSH-9 (message type) is empty", "MSH^1^9"),
                                   "ACK9", "20240102030405", payload=payload)
    header = read_header(nak)
    assert parse_ack(nak).control_id_echoed == "C-1"
    assert (header.sending_application, header.receiving_application) == ("RCV", "SND")
    expected = ["Error: Missing required child MSH_9.MSG_2"] \
        if case == "MSH-9 empty" and version == "2.8" else []
    assert validation_problems(nak, header.version) == expected


def protocol_answers(payloads: list[bytes], *, max_frame_size: int = 10_000,
                     sink_fails: bool = True) -> list[bytes]:
    """What the MLLP server writes by itself: 207 when the sink fails, the oversized AR."""
    class FailingSink:
        def receive(self, payload, peer):
            raise RuntimeError("store down")

        def frame_error(self, peer, error, prefix):
            return 41

    clock = task.Clock()
    factory = MLLPServerFactory(FailingSink(), clock=clock, max_frame_size=max_frame_size)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    proto.makeConnection(transport)
    for payload in payloads:
        proto.dataReceived(encode_frame(payload))
    return FrameDecoder().feed(transport.value())


@pytest.mark.parametrize("version", VERSIONS)
def test_protocol_refusals_validate(version):
    """If the sink fails or a frame is too large, then the protocol's own AR validates."""
    message = inbound(version)
    failed, oversized = protocol_answers([message, message + b"OBX|1\r" * 2000])
    for nak in (failed, oversized):
        validate(nak, version)
        assert parse_ack(nak).control_id_echoed == "C-1"
    expected = 104 if version == "2.8" else 207
    assert parse_ack(oversized).error_codes == (expected,)
    assert read_header(oversized).control_id == "ACK41"


@pytest.mark.parametrize("version", VERSIONS)
def test_enhanced_mode_commit_acks_validate(version):
    """If the message asks for enhanced mode, then the commit ACK (CA) validates too."""
    header = read_header(inbound(version, enhanced=True))
    payload = build_ack(header, "CA", control_id="ACK8", timestamp="20240102030405")
    validate(payload, version)


def test_v28_ack_has_no_msa3():
    """If a v2.8 message is refused with a text, then MSA-3 is empty and ERR-8 has the text."""
    header = read_header(inbound("2.8"))
    payload = build_ack(header, "AA", text="duplicate", control_id="A", timestamp="2024")
    msa = next(line for line in payload.split(b"\r") if line.startswith(b"MSA"))
    assert msa == b"MSA|AA|C-1"
    assert b"ERR|||0^Message accepted^HL70357|I||||duplicate" in payload
    assert parse_ack(payload).text == "duplicate"
