"""
The frame of every query response (RSP^K23, RSP^K22): MSH, MSA, ERR, QAK, QPD.

A response is written in the query's own delimiters, so that QPD can be
echoed exactly as received (IHE asks for the query to be returned unchanged)
and the values written are escaped for those delimiters by the message model.
The ERR segments follow the v2.5 layout of :mod:`mllp.ack` (ERR-2 location,
ERR-3 ``code^description^HL70357``, ERR-4 severity, ERR-8 text).

test-case-name: tests.identity.hl7.test_pix
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mappings.message import HL7Message, Segment
from mllp.ack import HL7Error
from mllp.codes import ERROR_DESCRIPTIONS

RESPONSE_VERSION = "2.5"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the answering side chooses: its control id, the time, and its own names."""

    control_id: str
    timestamp: str
    sending_application: str = ""  # ``^`` between components; default: the query's MSH-5
    sending_facility: str = ""  # default: the query's MSH-6


def new_response(query: HL7Message, message_type: str, code: str, status: str,
                 errors: Sequence[HL7Error], envelope: Envelope,
                 counts: tuple[int, int, int] | None = None) -> HL7Message:
    """MSH, MSA, ERR*, QAK, QPD of the answer to ``query``; body segments are added after.

    ``message_type`` is MSH-9 (``RSP^K23^RSP_K23``), ``code`` MSA-1, ``status`` QAK-2;
    ``counts`` fills QAK-4/5/6 (hits in total, in this payload, remaining).
    """
    response = _header(query, message_type, envelope)
    msa = response.add_segment(None, "MSA")
    msa.set(1, code)
    msa.set(2, query.msh.get(10))
    for error in errors:
        _add_error(response, error)
    qak = response.add_segment(None, "QAK")
    qpd = query.segment("QPD")
    qak.set(1, qpd.get(2) if qpd else "")
    qak.set(2, status)
    if qpd is not None:
        qak.set_field(3, qpd.field(1))
        response.add_segment(None, "QPD", [qpd.field(n) for n in range(1, qpd.field_count() + 1)])
    if counts is not None:
        for number, count in zip((4, 5, 6), counts):
            qak.set(number, str(count))
    return response


def _header(query: HL7Message, message_type: str, envelope: Envelope) -> HL7Message:
    """A message holding only the answer's MSH: names swapped, MSH-11 and MSH-18 echoed."""
    d, msh = query.delimiters, query.msh
    response = HL7Message.parse(f"MSH{d.field}{d.encoding_characters}")
    head = response.msh
    for number, value in ((3, envelope.sending_application), (4, envelope.sending_facility)):
        if value:
            _set_components(head, number, value)
        else:
            head.set_field(number, msh.field(number + 2))
    head.set_field(5, msh.field(3))
    head.set_field(6, msh.field(4))
    head.set(7, envelope.timestamp)
    _set_components(head, 9, message_type)
    head.set(10, envelope.control_id)
    head.set_field(11, msh.field(11) or "P")
    head.set(12, RESPONSE_VERSION)
    if msh.field(18):
        head.set_field(18, msh.field(18))
    return response


def _set_components(segment: Segment, number: int, value: str) -> None:
    for component, part in enumerate(value.split("^"), start=1):
        segment.set(number, part, 1, component)


def _add_error(response: HL7Message, error: HL7Error) -> Segment:
    err = response.add_segment(None, "ERR")
    for component, part in enumerate(error.location.split("^") if error.location else [], start=1):
        err.set(2, part, 1, component)
    err.set(3, str(error.code), 1, 1)
    err.set(3, ERROR_DESCRIPTIONS.get(error.code, ""), 1, 2)
    err.set(3, "HL70357", 1, 3)
    err.set(4, error.severity)
    if error.text:
        err.set(8, error.text)
    return err


def wire_text(response: HL7Message) -> str:
    """The response as text with CR after every segment (MLLP framing is the caller's)."""
    return "\r".join(s.text() for s in response.segments()) + "\r"
