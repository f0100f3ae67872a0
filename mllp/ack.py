"""
Building and reading HL7 acknowledgments, purely.

The server answers every frame with an ACK built from the inbound MSH alone
(see :mod:`mllp.header`), and the client reads the MSA of what comes back;
neither needs a full HL7 parser, so this module needs none.

An ACK follows the rules of the version of the message it answers (MSH-12),
so that a peer validating it against that version accepts it:

* MSH: sender and receiver swapped, the inbound separators, MSH-11 and MSH-12
  echoed whole (``2.5^FRA^2.11`` stays as is), MSH-9 ``ACK^<trigger>^ACK``
  (``ACK^<trigger>`` before v2.3.1, which had no message structure), MSH-18
  echoed so the ACK is in the sender's character set.
* Free text: MSA-3 before v2.7 (deprecated from v2.4 but the only place older
  receivers look); from v2.7, where MSA-3 is withdrawn, ERR-8 only (an
  ERR of severity I, code 0, when an accept carries a text and no error).
* ERR before v2.5: one segment, ERR-1 ``SEG^seq^field^code&description&HL70357``
  repeated per error. From v2.5: one segment per error, ERR-2 location, ERR-3
  ``code^description^HL70357``, ERR-4 severity, ERR-8 the free text.
* Codes: those of the version's table 0357; 104 (value too long) exists
  from v2.7 only and is reported as 207 before (:func:`reported_code`).

Enhanced mode (MSH-15 or MSH-16 valued) has two acknowledgements: the accept ACK (CA/CE/CR)
sent as MSH-15 asks (:func:`accept_ack_wanted`), and the application ACK (AA/AE/AR) sent
as MSH-16 asks (:func:`application_ack_wanted`) once the message is processed; the latter
says MSH-15/16 ``NE`` (``ack_types`` of :func:`build_ack`), asking for no ACK of itself.

test-case-name: tests.mllp.test_ack
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mllp.codes import (  # noqa: F401 - table 0357 is re-exported as part of this API
    ACCEPTING_CODES,
    APPLICATION_ACCEPT,
    APPLICATION_ERROR,
    APPLICATION_INTERNAL_ERROR,
    APPLICATION_RECORD_LOCKED,
    APPLICATION_REJECT,
    COMMIT_ACCEPT,
    COMMIT_ERROR,
    COMMIT_REJECT,
    DATA_TYPE,
    DUPLICATE_KEY,
    ERROR_DESCRIPTIONS,
    MESSAGE_ACCEPTED,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION,
    VALUE_TOO_LONG,
)
from mllp.escaping import escape, unescape
from mllp.header import (
    DEFAULT_ENCODING_CHARACTERS,
    DEFAULT_SEPARATOR,
    HeaderError,
    MSHHeader,
    header_codec,
    msh_segment,
    read_header,
    read_header_leniently,
    read_separators,
)

ORIGINAL = "original"
ENHANCED = "enhanced"

ACCEPT = "accept"
ERROR = "error"
REJECT = "reject"
OUTCOMES = (ACCEPT, ERROR, REJECT)

_CODES = {
    ORIGINAL: {ACCEPT: APPLICATION_ACCEPT, ERROR: APPLICATION_ERROR, REJECT: APPLICATION_REJECT},
    ENHANCED: {ACCEPT: COMMIT_ACCEPT, ERROR: COMMIT_ERROR, REJECT: COMMIT_REJECT},
}

DEFAULT_VERSION = "2.5"
DEFAULT_PROCESSING_ID = "P"
_TABLE_0357 = frozenset(ERROR_DESCRIPTIONS)
SEVERITIES = frozenset({"E", "W", "I", "F"})


@dataclass(frozen=True)
class HL7Error:
    """One error to report in an ERR segment; ``code`` is from HL7 table 0357.

    ``location`` uses ``^`` between components whatever the message's own
    separators (``"PID^1^3"``: segment, sequence, field); it is translated
    when the ERR segment is written.
    """

    code: int
    text: str
    location: str = ""
    severity: str = "E"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {sorted(SEVERITIES)}, not {self.severity!r}")

    @classmethod
    def from_exception(cls, error: HeaderError) -> "HL7Error":
        """The ERR entry for a header or encoding error."""
        return cls(error.code, error.text, error.location)


@dataclass(frozen=True)
class AckResult:
    """What an ACK said, as read by the sending side."""

    code: str  # MSA-1: AA/AE/AR or CA/CE/CR
    control_id_echoed: str  # MSA-2
    text: str  # MSA-3, else the ERR-8 texts joined
    error_codes: tuple[int, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTING_CODES


def stored_control_id(record_id: int) -> str:
    """MSH-10 of an ACK answering input stored as record ``record_id``: ``ACK<id>``.

    Tying the ACK to the record lets an operator find, from what a sender logged, the
    message it was answered about.
    """
    return f"ACK{record_id}"


def ack_mode_for(header: MSHHeader) -> str:
    """``"enhanced"`` when MSH-15 or MSH-16 is valued, else ``"original"``."""
    return ENHANCED if header.accept_ack_type or header.application_ack_type else ORIGINAL


def ack_code(outcome: str, mode: str) -> str:
    """MSA-1 for an outcome (``accept``/``error``/``reject``) in an ACK mode.

    In enhanced mode this is the commit (accept) acknowledgment: CA/CE/CR.
    """
    return _CODES[mode][outcome]


def accept_ack_wanted(header: MSHHeader, outcome: str) -> bool:
    """Whether MSH-15 asks for an accept ACK for this outcome (AL, NE, ER, SU).

    Original mode always wants one; an empty or unknown MSH-15 in enhanced mode is read as AL.
    """
    condition = header.accept_ack_type.upper()
    if ack_mode_for(header) == ORIGINAL or condition in ("", "AL"):
        return True
    if condition == "NE":
        return False
    if condition == "ER":
        return outcome != ACCEPT
    if condition == "SU":
        return outcome == ACCEPT
    return True


def application_ack_wanted(header: MSHHeader, outcome: str) -> bool:
    """Whether MSH-16 asks for an application ACK for this outcome (AL, NE, ER, SU).

    Only enhanced mode has application ACKs: in original mode the one ACK is both. An empty
    MSH-16 next to a valued MSH-15 means NE, as HL7 v2 chapter 2 says of enhanced mode; an
    unknown condition is read as AL, so that a sender waiting for an answer gets one.
    """
    if ack_mode_for(header) == ORIGINAL:
        return False
    condition = header.application_ack_type.upper()
    if condition in ("", "NE"):
        return False
    if condition == "ER":
        return outcome != ACCEPT
    if condition == "SU":
        return outcome == ACCEPT
    return True


@dataclass(frozen=True)
class Answers:
    """What a header's MSH-15 and MSH-16 ask for, outcome by outcome: ``mode`` (original or
    enhanced), ``accept`` (outcome -> MSA-1 of the ACK answering the frame, None where
    MSH-15 asks for none), ``application`` (the outcomes an application ACK is wanted for)."""

    mode: str
    accept: dict[str, str | None]
    application: frozenset[str]


def answers_for(header: MSHHeader) -> Answers:
    """:class:`Answers` for ``header``: :func:`ack_mode_for`, :func:`accept_ack_wanted`,
    :func:`ack_code` and :func:`application_ack_wanted` for each outcome, worked out once
    per header shape (:class:`mllp.header.HeaderShape`) rather than for every message."""
    shape = header.shape
    answers = shape.derived.get(answers_for) if shape is not None else None
    if answers is None:
        mode = ack_mode_for(header)
        answers = Answers(
            mode, {outcome: ack_code(outcome, mode) if accept_ack_wanted(header, outcome)
                   else None for outcome in OUTCOMES},
            frozenset(outcome for outcome in OUTCOMES
                      if application_ack_wanted(header, outcome)))
        if shape is not None:
            shape.derived[answers_for] = answers
    return answers


def application_ack_code(outcome: str) -> str:
    """MSA-1 of an application ACK: AA, AE or AR (an enhanced-mode outcome of processing)."""
    return _CODES[ORIGINAL][outcome]


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` -> ``(2, 3, 1)``; unreadable versions count as the default (2.5)."""
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        return version_tuple(DEFAULT_VERSION)


def table_0357(version: tuple[int, ...]) -> frozenset[int]:
    """The codes HL7 table 0357 holds in ``version``: 104 (value too long) came with v2.7."""
    return _TABLE_0357 if version >= (2, 7) else _TABLE_0357 - {VALUE_TOO_LONG}


def reported_code(code: int, version: tuple[int, ...]) -> int:
    """The table 0357 code an ACK of ``version`` says for ``code``.

    A code the version's table lacks becomes 207, the table's catch-all ("application
    internal error"): a peer of that version cannot read the newer code, and no older code
    means "too long for the application" (102 and 100 are about data types and segment order).
    """
    return code if code in table_0357(version) else APPLICATION_INTERNAL_ERROR


def build_ack(header: MSHHeader, code: str, *, text: str = "",
              errors: Sequence[HL7Error] = (), control_id: str, timestamp: str,
              charset: str | None = None, sending_application: str | None = None,
              sending_facility: str | None = None,
              ack_types: tuple[str, str] = ("", "")) -> bytes:
    """The ACK answering the message whose MSH is ``header``, as unframed bytes.

    The ACK follows the rules of the message's own version (MSH-12; v2.5 when unreadable):
    see the module docstring. ``header`` may come from :func:`read_header_leniently`: an
    empty MSH-11 is answered ``P`` and an empty MSH-12 with v2.5.

    ``charset`` (a table 0211 name) overrides the echoed MSH-18; it also picks
    the codec the ACK is encoded with. ``sending_application`` and
    ``sending_facility`` override MSH-3 and MSH-4 (by default the received
    MSH-5 and MSH-6); their components are separated by ``^``, written with
    the message's own component separator.
    """
    charset = header.charset if charset is None else charset
    text = ack_text(header, code, text=text, errors=errors, control_id=control_id,
                    timestamp=timestamp, charset=charset,
                    sending_application=sending_application,
                    sending_facility=sending_facility, ack_types=ack_types)
    return text.encode(header_codec(charset), errors="replace")


def ack_text(header: MSHHeader, code: str, *, text: str, errors: Sequence[HL7Error],
             control_id: str, timestamp: str, charset: str, sending_application: str | None,
             sending_facility: str | None, ack_types: tuple[str, str]) -> str:
    """The text of :func:`build_ack`'s ACK, before it is encoded in ``charset``'s codec."""
    sep, enc = header.field_separator, header.encoding_characters
    version = version_tuple(header.version)
    msh = ["MSH", enc, _name(sending_application, header.receiving_application, sep, enc),
           _name(sending_facility, header.receiving_facility, sep, enc),
           header.sending_application, header.sending_facility, timestamp, "",
           _ack_message_type(header.trigger_event, enc[0], version),
           escape(control_id, sep, enc), header.processing_id or DEFAULT_PROCESSING_ID,
           header.field(12) if header.version else DEFAULT_VERSION,
           "", "", ack_types[0], ack_types[1], "", charset]
    errors = list(errors)
    if version >= (2, 7):  # MSA-3 withdrawn: the text goes into ERR-8
        if text and all(error.text != text for error in errors):
            errors.append(_text_as_error(text, code, errors))
        text = ""
    msa = ["MSA", code, header.control_id, escape(text, sep, enc)]
    segments = [_join(msh, sep), _join(msa, sep), *_error_segments(errors, sep, enc, version)]
    return "\r".join(segments) + "\r"


def build_nak_without_header(error: HL7Error, control_id: str, timestamp: str,
                             *, payload: bytes = b"", code: str | None = None,
                             sending_application: str | None = None,
                             sending_facility: str | None = None) -> bytes:
    """A reject for ``payload``, whose MSH :func:`read_header` refused.

    It echoes what :func:`read_header_leniently` recovers (MSH-10 into MSA-2, MSH-3 to 6
    swapped, the separators when usable) so that the sender can tell which message was
    refused. ``code`` defaults to AR, or CR when MSH-15/16 ask for enhanced mode. MSH-3 and
    MSH-4 are as in :func:`build_ack`.
    """
    header = read_header_leniently(payload)
    return build_ack(header, code or ack_code(REJECT, ack_mode_for(header)), text=error.text,
                     errors=[error], control_id=control_id, timestamp=timestamp,
                     sending_application=sending_application,
                     sending_facility=sending_facility)


def reject_for(payload: bytes, error: HL7Error, control_id: str, timestamp: str) -> bytes:
    """A reject answering ``payload``: echoing its MSH when it can be read."""
    try:
        header = read_header(payload)
    except HeaderError:
        return build_nak_without_header(error, control_id, timestamp, payload=payload)
    return build_ack(header, ack_code(REJECT, ack_mode_for(header)), text=error.text,
                     errors=[error], control_id=control_id, timestamp=timestamp)


def _text_as_error(text: str, code: str, errors: Sequence[HL7Error]) -> HL7Error:
    """The ERR entry carrying ``text`` from v2.7, where MSA-3 is gone.

    Information (severity I) about the first error when there is one; else code 0 on an
    accept, and the catch-all 207 on an error or reject that gave no error of its own.
    """
    if errors:
        return HL7Error(errors[0].code, text, errors[0].location, severity="I")
    if code in ACCEPTING_CODES:
        return HL7Error(MESSAGE_ACCEPTED, text, severity="I")
    return HL7Error(APPLICATION_INTERNAL_ERROR, text)


def _name(configured: str | None, echoed: str, sep: str, enc: str) -> str:
    """MSH-3/MSH-4 of an ACK: ``configured`` (``^`` between components) or ``echoed`` as is."""
    if configured is None:
        return echoed
    return enc[0].join(escape(part, sep, enc) for part in configured.split("^"))


def _ack_message_type(trigger: str, component: str, version: tuple[int, ...]) -> str:
    """MSH-9: ``ACK^A01^ACK``; no structure before v2.3.1; ``ACK^^ACK`` for an unknown trigger."""
    if version < (2, 3, 1):
        return f"ACK{component}{trigger}" if trigger else "ACK"
    return f"ACK{component}{trigger}{component}ACK"


def _join(fields: list[str], separator: str) -> str:
    """Join fields, dropping trailing empty ones as HL7 allows."""
    while len(fields) > 2 and not fields[-1]:
        fields.pop()
    return separator.join(fields)


def _error_segments(errors: Sequence[HL7Error], sep: str, enc: str,
                    version: tuple[int, ...]) -> list[str]:
    """The ERR segments: one per error from v2.5; before, one ERR with an ERR-1 repetition each.

    Before v2.5 an ACK holds one ERR at most, whose only field, ERR-1, is
    ``SEG^seq^field^code&description&HL70357`` and repeats; from v2.5 ERR-2 locates the
    error, ERR-3 codes it, ERR-4 gives the severity and ERR-8 the text (ERR-1 left empty:
    it is withdrawn from v2.7).
    """
    if not errors:
        return []
    comp, rep, sub = enc[0], enc[1], enc[3]
    if version < (2, 5):
        entries = []
        for error in errors:
            location = (_location(error) + ["", "", ""])[:3]
            entries.append(comp.join(location + [sub.join(_coded(error, version))]))
        return [_join(["ERR", rep.join(entries)], sep)]
    return [_join(["ERR", "", comp.join(_location(error)), comp.join(_coded(error, version)),
                   error.severity, "", "", "", escape(error.text, sep, enc)], sep)
            for error in errors]


def _location(error: HL7Error) -> list[str]:
    return error.location.split("^") if error.location else []


def _coded(error: HL7Error, version: tuple[int, ...]) -> list[str]:
    """ERR-3 (ERR-1.4 before v2.5): code, description, coding system, in the version's table."""
    code = reported_code(error.code, version)
    return [str(code), ERROR_DESCRIPTIONS.get(code, ""), "HL70357"]


def parse_ack(payload: bytes) -> AckResult:
    """What an ACK payload says (MSA, ERR codes and texts).

    Raises :class:`HeaderError` when the payload cannot be read as an ACK (no MSH first,
    unusable MSH-1/MSH-2, no MSA-1), and nothing else whatever the peer sent: every answer
    ends in a decision or in that error. MSH-9, MSH-10 and MSH-12 are not needed to read it.
    """
    sep, enc = read_separators(msh_segment(payload))
    charset = read_header_leniently(payload).charset
    text = payload.decode(header_codec(charset), errors="replace")
    segments = [line.split(sep) for line in text.replace("\n", "\r").split("\r") if line]
    msa = next((fields for fields in segments if fields[0] == "MSA"), None)
    if msa is None or len(msa) < 2 or not msa[1].strip():
        raise HeaderError(SEGMENT_SEQUENCE, "the acknowledgment has no MSA-1", "MSA^1")
    msa += ["", "", ""]
    codes, notes = [], []
    for fields in segments:
        if fields[0] == "ERR":
            found, note = _read_error(fields, enc)
            codes += found
            notes += [unescape(note, sep, enc)] if note else []
    message = unescape(msa[3], sep, enc) or "; ".join(notes)
    return AckResult(msa[1].strip(), msa[2].strip(), message, tuple(codes))


def _read_error(fields: list[str], enc: str) -> tuple[list[int], str]:
    """The table 0357 codes and free text of one ERR segment, either layout."""
    fields = fields + [""] * 9
    comp, rep, sub = enc[0], enc[1], enc[3]
    code = _code(fields[3].split(comp)[0])
    if code is not None:
        return [code], fields[8]
    codes = []  # before v2.5: ERR-1 = SEG^seq^field^code&text&system, repeated
    for entry in fields[1].split(rep):
        components = entry.split(comp) + ["", "", "", ""]
        code = _code(components[3].split(sub)[0])
        codes += [code] if code is not None else []
    return codes, fields[8]


def _code(text: str) -> int | None:
    """A table 0357 code as written by a peer, None when it is not a plain number."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


__all__ = [
    "ACCEPT", "ERROR", "REJECT", "ORIGINAL", "ENHANCED", "HL7Error", "AckResult",
    "ack_mode_for", "ack_code", "accept_ack_wanted", "application_ack_wanted",
    "application_ack_code", "escape", "unescape",
    "ack_text", "build_ack", "build_nak_without_header", "reject_for", "parse_ack",
    "version_tuple", "table_0357",
    "reported_code", "stored_control_id", "DEFAULT_SEPARATOR", "DEFAULT_ENCODING_CHARACTERS",
    "MESSAGE_ACCEPTED", "SEGMENT_SEQUENCE", "REQUIRED_FIELD_MISSING", "DATA_TYPE",
    "TABLE_VALUE_NOT_FOUND", "VALUE_TOO_LONG", "UNSUPPORTED_MESSAGE_TYPE",
    "UNSUPPORTED_EVENT", "UNSUPPORTED_PROCESSING_ID", "UNSUPPORTED_VERSION", "UNKNOWN_KEY",
    "DUPLICATE_KEY", "APPLICATION_RECORD_LOCKED", "APPLICATION_INTERNAL_ERROR",
]
