"""
Plain ACKs from templates: the ACK of a sender's messages built once, then filled in.

Why: a sender writes the same MSH again and again (same applications, version, character
set, trigger event within a feed), and the answer to each of its messages differs from the
last only in three values: our MSH-7 (the time), our MSH-10 (``ACK<id>``) and MSA-2 (its
MSH-10). Building the ACK field by field for each message (version rules, escaping, joining,
encoding) costs several times what filling those three holes costs, on the reactor thread of
every message.

A template is made by :func:`mllp.ack.ack_text` itself, given marks in place of the three
values, and cut at the marks: what it holds is what :func:`mllp.ack.build_ack` writes, by
construction. Only ACKs without free text or ERR segments are made this way (the AA or CA of
a message that went through): the others are rarer and keep :func:`mllp.ack.build_ack`. A
header whose values hold a mark, or a control id that would need escaping, is built the plain
way; so is the answer to an empty MSH-10 (what :func:`mllp.header.read_header_leniently` gives
for one), since build_ack then drops MSA-2 as a trailing empty field.

test-case-name: tests.mllp.test_acktemplate
"""
from __future__ import annotations

from dataclasses import replace

from mllp.ack import ack_text, build_ack
from mllp.header import MSHHeader, header_codec

# Stand-ins for the three values a template leaves open; NUL never appears in HL7 text here,
# and a header that holds one anyway makes no template (the cut would not give four parts).
_TIME, _OWN_ID, _THEIR_ID = "\x00T\x00", "\x00C\x00", "\x00M\x00"

DEFAULT_LIMIT = 256  # templates kept per builder; senders use a handful of MSH shapes


class AckTemplates:
    """A bounded cache of ACK templates for one engine (reactor thread only)."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        self._limit = limit
        # key -> (text before MSH-7, between MSH-7 and MSH-10, between MSH-10 and MSA-2,
        # after MSA-2, codec); None: this key makes no template
        self._templates: dict[tuple, tuple[str, str, str, str, str] | None] = {}

    def build(self, header: MSHHeader, code: str, *, control_id: str, timestamp: str,
              sending_application: str | None = None,
              sending_facility: str | None = None) -> bytes:
        """What ``build_ack(header, code, control_id=..., timestamp=..., sending_...)``
        returns (no text, no errors), from a template when one can be made."""
        shape = header.shape  # holds every value the template takes from the header
        key = (shape, code, sending_application, sending_facility) if shape is not None else (
            header.field_separator, header.encoding_characters, header.sending_application,
            header.sending_facility, header.receiving_application, header.receiving_facility,
            header.trigger_event, header.processing_id, header.version, header.field(12),
            header.charset, code, sending_application, sending_facility)
        template = self._templates.get(key, False)
        if template is False:
            template = _template(header, code, sending_application, sending_facility)
            if len(self._templates) < self._limit:
                self._templates[key] = template
        if (template is None or not control_id.isalnum() or not header.control_id
                or "\x00" in header.control_id):
            return build_ack(header, code, control_id=control_id, timestamp=timestamp,
                             sending_application=sending_application,
                             sending_facility=sending_facility)
        head, middle, before_theirs, tail, codec = template
        text = f"{head}{timestamp}{middle}{control_id}{before_theirs}{header.control_id}{tail}"
        return text.encode(codec, errors="replace")


def _template(header: MSHHeader, code: str, sending_application: str | None,
              sending_facility: str | None) -> tuple[str, str, str, str, str] | None:
    """The ACK text of ``header`` cut where the three open values go, and its codec; None
    when the header's own values hold a mark."""
    marked = replace(header, control_id=_THEIR_ID)
    text = ack_text(marked, code, text="", errors=(), control_id=_OWN_ID, timestamp=_TIME,
                    charset=header.charset, sending_application=sending_application,
                    sending_facility=sending_facility, ack_types=("", ""))
    head, sep1, rest = text.partition(_TIME)
    middle, sep2, rest = rest.partition(_OWN_ID)
    before_theirs, sep3, tail = rest.partition(_THEIR_ID)
    if not (sep1 and sep2 and sep3) or "\x00" in head + middle + before_theirs + tail:
        return None
    return head, middle, before_theirs, tail, header_codec(header.charset)
