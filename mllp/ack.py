"""
Building and reading HL7 acknowledgments, purely.

The server answers every frame with an ACK built from the inbound MSH alone
(see :mod:`mllp.header`), and the client reads the MSA of what comes back;
neither needs a full HL7 parser, so this module needs none.

Layout choices:

* MSH: sender and receiver swapped, the inbound separators, MSH-11 and MSH-12
  echoed whole (``2.5^FRA^2.11`` stays as is), MSH-9 ``ACK^<trigger>^ACK``
  (``ACK^<trigger>`` before v2.3.1, which had no message structure), MSH-18
  echoed so the ACK is in the sender's character set.
* MSA-3 carries the free text in every version (deprecated from v2.4 but the
  only place older receivers look).
* ERR from v2.5: ERR-2 location, ERR-3 ``code^description^HL70357``, ERR-4
  severity, ERR-8 the free text. Before v2.5: ERR-1 ``SEG^seq^field^code&description&HL70357``.

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
from mllp.header import HeaderError, MSHHeader, header_codec, read_header

ORIGINAL = "original"
ENHANCED = "enhanced"

ACCEPT = "accept"
ERROR = "error"
REJECT = "reject"

_CODES = {
    ORIGINAL: {ACCEPT: APPLICATION_ACCEPT, ERROR: APPLICATION_ERROR, REJECT: APPLICATION_REJECT},
    ENHANCED: {ACCEPT: COMMIT_ACCEPT, ERROR: COMMIT_ERROR, REJECT: COMMIT_REJECT},
}

DEFAULT_SEPARATOR = "|"
DEFAULT_ENCODING_CHARACTERS = "^~\\&"
DEFAULT_VERSION = "2.5"
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

    Original mode always wants one. The policy of whether to honour NE over
    MLLP, where many senders block until they read an answer, is the caller's.
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


def escape(text: str, field_separator: str, encoding_characters: str) -> str:
    """Escape HL7 delimiters (and CR/LF, which would end the segment) in ``text``."""
    escape_char = encoding_characters[2]
    names = dict(zip(encoding_characters, "SRET"))
    names[field_separator] = "F"
    if len(encoding_characters) > 4:
        names[encoding_characters[4]] = "P"  # v2.7 truncation character
    out = []
    for char in text:
        name = names.get(char)
        if name is not None:
            out.append(f"{escape_char}{name}{escape_char}")
        elif char in "\r\n":
            out.append(f"{escape_char}X{ord(char):02X}{escape_char}")
        else:
            out.append(char)
    return "".join(out)


def unescape(text: str, field_separator: str, encoding_characters: str) -> str:
    """Undo :func:`escape` for the delimiter and hex escapes; leave others as they are."""
    escape_char = encoding_characters[2]
    if escape_char not in text:
        return text
    values = dict(zip("SRET", encoding_characters))
    values["F"] = field_separator
    pieces = text.split(escape_char)
    out = [pieces[0]]
    for index in range(1, len(pieces), 2):
        name = pieces[index]
        rest = pieces[index + 1] if index + 1 < len(pieces) else ""
        if name in values:
            out.append(values[name])
        elif name[:1] == "X" and len(name) == 3:
            out.append(chr(int(name[1:], 16)))
        else:
            out.append(f"{escape_char}{name}{escape_char}")
        out.append(rest)
    return "".join(out)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` -> ``(2, 3, 1)``; unreadable versions count as the default (2.5)."""
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        return version_tuple(DEFAULT_VERSION)


def build_ack(header: MSHHeader, code: str, *, text: str = "",
              errors: Sequence[HL7Error] = (), control_id: str, timestamp: str,
              charset: str | None = None, sending_application: str | None = None,
              sending_facility: str | None = None) -> bytes:
    """The ACK answering the message whose MSH is ``header``, as unframed bytes.

    ``charset`` (a table 0211 name) overrides the echoed MSH-18; it also picks
    the codec the ACK is encoded with. ``sending_application`` and
    ``sending_facility`` override MSH-3 and MSH-4 (by default the received
    MSH-5 and MSH-6); their components are separated by ``^``, written with
    the message's own component separator.
    """
    sep, enc = header.field_separator, header.encoding_characters
    charset = header.charset if charset is None else charset
    version = version_tuple(header.version)
    msh = ["MSH", enc, _name(sending_application, header.receiving_application, sep, enc),
           _name(sending_facility, header.receiving_facility, sep, enc),
           header.sending_application, header.sending_facility, timestamp, "",
           _ack_message_type(header.trigger_event, enc[0], version),
           escape(control_id, sep, enc), header.processing_id, header.field(12),
           "", "", "", "", "", charset]
    msa = ["MSA", code, header.control_id, escape(text, sep, enc)]
    segments = [_join(msh, sep), _join(msa, sep)]
    segments += [_error_segment(error, sep, enc, version) for error in errors]
    return "\r".join(segments).encode(header_codec(charset), errors="replace") + b"\r"


def build_nak_without_header(error: HL7Error, control_id: str, timestamp: str,
                             *, code: str = APPLICATION_REJECT,
                             sending_application: str | None = None,
                             sending_facility: str | None = None) -> bytes:
    """A reject for input whose MSH could not be read: default separators, v2.5, MSA-2 empty.

    MSH-3 and MSH-4 are empty unless ``sending_application`` / ``sending_facility`` say
    who answers (components separated by ``^``), as in :func:`build_ack`.
    """
    sep, enc = DEFAULT_SEPARATOR, DEFAULT_ENCODING_CHARACTERS
    msh = ["MSH", enc, _name(sending_application, "", sep, enc),
           _name(sending_facility, "", sep, enc), "", "", timestamp, "", "ACK",
           escape(control_id, sep, enc), "P", DEFAULT_VERSION]
    msa = ["MSA", code, "", escape(error.text, sep, enc)]
    segments = [_join(msh, sep), _join(msa, sep),
                _error_segment(error, sep, enc, version_tuple(DEFAULT_VERSION))]
    return "\r".join(segments).encode("ascii", errors="replace") + b"\r"


def _name(configured: str | None, echoed: str, sep: str, enc: str) -> str:
    """MSH-3/MSH-4 of an ACK: ``configured`` (``^`` between components) or ``echoed`` as is."""
    if configured is None:
        return echoed
    return enc[0].join(escape(part, sep, enc) for part in configured.split("^"))


def _ack_message_type(trigger: str, component: str, version: tuple[int, ...]) -> str:
    if not trigger:
        return "ACK"
    if version < (2, 3, 1):
        return f"ACK{component}{trigger}"
    return f"ACK{component}{trigger}{component}ACK"


def _join(fields: list[str], separator: str) -> str:
    """Join fields, dropping trailing empty ones as HL7 allows."""
    while len(fields) > 2 and not fields[-1]:
        fields.pop()
    return separator.join(fields)


def _error_segment(error: HL7Error, sep: str, enc: str, version: tuple[int, ...]) -> str:
    """One ERR segment, in the v2.5+ layout or the older ERR-1 one."""
    comp, sub = enc[0], enc[3]
    location = error.location.split("^") if error.location else []
    description = ERROR_DESCRIPTIONS.get(error.code, "")
    if version < (2, 5):
        location = (location + ["", "", ""])[:3]
        coded = sub.join([str(error.code), description, "HL70357"])
        return _join(["ERR", comp.join(location + [coded])], sep)
    coded = comp.join([str(error.code), description, "HL70357"])
    return _join(["ERR", "", comp.join(location), coded, error.severity,
                  "", "", "", escape(error.text, sep, enc)], sep)


def parse_ack(payload: bytes) -> AckResult:
    """Read MSA (and ERR codes) from an ACK payload; raise :class:`HeaderError` if absent."""
    header = read_header(payload)
    sep, enc = header.field_separator, header.encoding_characters
    text = payload.decode(header_codec(header.charset), errors="replace")
    segments = [line.split(sep) for line in text.replace("\n", "\r").split("\r") if line]
    msa = next((fields for fields in segments if fields[0] == "MSA"), None)
    if msa is None or len(msa) < 2 or not msa[1].strip():
        raise HeaderError(SEGMENT_SEQUENCE, "the acknowledgment has no MSA-1", "MSA^1")
    msa += ["", "", ""]
    codes, notes = [], []
    for fields in segments:
        if fields[0] == "ERR":
            code, note = _read_error(fields, enc)
            codes += [code] if code is not None else []
            notes += [unescape(note, sep, enc)] if note else []
    message = unescape(msa[3], sep, enc) or "; ".join(notes)
    return AckResult(msa[1].strip(), msa[2].strip(), message, tuple(codes))


def _read_error(fields: list[str], enc: str) -> tuple[int | None, str]:
    """The table 0357 code and free text of one ERR segment, either layout."""
    fields = fields + [""] * 9
    comp, sub = enc[0], enc[3]
    candidate = fields[3].split(comp)[0]
    if not candidate:  # before v2.5: ERR-1 = SEG^seq^field^code&text&system
        components = fields[1].split(comp) + ["", "", "", ""]
        candidate = components[3].split(sub)[0]
    try:
        return int(candidate), fields[8]
    except ValueError:
        return None, fields[8]


__all__ = [
    "ACCEPT", "ERROR", "REJECT", "ORIGINAL", "ENHANCED", "HL7Error", "AckResult",
    "ack_mode_for", "ack_code", "accept_ack_wanted", "escape", "unescape",
    "build_ack", "build_nak_without_header", "parse_ack", "version_tuple",
    "MESSAGE_ACCEPTED", "SEGMENT_SEQUENCE", "REQUIRED_FIELD_MISSING", "DATA_TYPE",
    "TABLE_VALUE_NOT_FOUND", "VALUE_TOO_LONG", "UNSUPPORTED_MESSAGE_TYPE",
    "UNSUPPORTED_EVENT", "UNSUPPORTED_PROCESSING_ID", "UNSUPPORTED_VERSION", "UNKNOWN_KEY",
    "DUPLICATE_KEY", "APPLICATION_RECORD_LOCKED", "APPLICATION_INTERNAL_ERROR",
]
