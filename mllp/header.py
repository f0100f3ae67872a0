"""
Eager reading of the MSH segment, and decoding of a payload by its MSH-18.

The receiving side must answer every frame, and the answer depends only on
MSH: who sent it (to swap sender and receiver), its control id (MSA-2), its
version, its acknowledgment mode and its character set. Reading just that
segment from the raw bytes, without parsing the rest, keeps the hot path cheap
and lets the ACK be built even when the body is broken.

MSH is always ASCII-compatible (table 0211 only allows ASCII-compatible
encodings over MLLP here; UTF-16/32 are refused), so it is read before the
payload is decoded. Text fields of MSH are decoded with the codec MSH-18 names,
or ISO-8859-1 when it names none or one unknown: ISO-8859-1 maps every byte,
so names round-trip byte for byte into the ACK.

Segments end with CR as HL7 says; LF and CRLF are accepted too, because files
edited on other systems (several of the reference samples among them) use them.

test-case-name: tests.mllp.test_header
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

from mllp.codes import (
    DATA_TYPE,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    TABLE_VALUE_NOT_FOUND,
)
from mllp.escaping import escape

# HL7 table 0211 (alternate character sets) -> Python codec. Names without an
# ASCII-compatible Python codec (UNICODE, UNICODE UTF-16/32, ISO IR87/159,
# CNS 11643-1992) are left out on purpose: decode_payload reports them unknown.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR14": "shift_jis",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "UNICODE UTF-8": "utf-8",
}

# What an answer is written with when the sender's MSH-1 and MSH-2 cannot be used.
DEFAULT_SEPARATOR = "|"
DEFAULT_ENCODING_CHARACTERS = "^~\\&"

# Used for MSH text when MSH-18 is empty or unknown: maps every byte, never fails.
FALLBACK_CODEC = "latin-1"


class HeaderError(Exception):
    """MSH could not be read; ``code`` is from HL7 table 0357.

    ``location`` is an ERR-2 style position with ``^`` between components,
    e.g. ``"MSH^1^9"`` (segment, sequence, field).
    """

    def __init__(self, code: int, text: str, location: str = ""):
        super().__init__(f"{code} {text}" + (f" (at {location})" if location else ""))
        self.code = code
        self.text = text
        self.location = location


class EncodingError(HeaderError):
    """The payload cannot be decoded with the character set it declares.

    Code 103 (table value not found, at MSH-18) when MSH-18 names a character
    set this engine does not know; code 102 (data type error, at the segment
    and field holding the bad byte) when bytes are invalid in that character
    set. ``offset`` is the byte offset of the first bad byte, or None.
    """

    def __init__(self, code: int, text: str, location: str = "", *,
                 charset: str, offset: int | None = None):
        super().__init__(code, text, location)
        self.charset = charset
        self.offset = offset


@dataclass(frozen=True)
class MSHHeader:
    """The MSH of one message, as text; ``fields[n - 1]`` is MSH-n."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_datetime: str
    message_type: str  # MSH-9 whole, e.g. "ADT^A01^ADT_A01"
    message_code: str
    trigger_event: str
    control_id: str
    processing_id: str  # MSH-11 whole, e.g. "P^T"
    version: str  # MSH-12 first component, e.g. "2.5"
    accept_ack_type: str
    application_ack_type: str
    charset: str  # MSH-18 first repetition, "" when absent
    fields: tuple[str, ...]
    # The HeaderShape this header was read with (read_header only), else None. Not part of
    # the value: equal headers may have different shapes. A header made with
    # dataclasses.replace keeps it, so replace only MSH-7 or MSH-10, or give shape=None.
    shape: "HeaderShape | None" = field(default=None, compare=False, repr=False)

    @property
    def component_separator(self) -> str:
        return self.encoding_characters[0]

    @property
    def repetition_separator(self) -> str:
        return self.encoding_characters[1]

    @property
    def escape_character(self) -> str:
        return self.encoding_characters[2]

    @property
    def subcomponent_separator(self) -> str:
        return self.encoding_characters[3]

    def field(self, number: int) -> str:
        """MSH-``number`` as raw text, ``""`` when the message stops before it."""
        return self.fields[number - 1] if 0 < number <= len(self.fields) else ""


def first_segment(payload: bytes) -> bytes:
    """The bytes of the first segment, leading blank lines skipped."""
    payload = payload.lstrip(b"\r\n")
    end = payload.find(b"\r")  # then LF, up to the CR only: a message's first segment is short
    if end < 0:
        end = len(payload)
    found = payload.find(b"\n", 0, end)
    return payload[:end if found < 0 else found]


def header_codec(charset: str) -> str:
    """The codec MSH text is read and written with for an MSH-18 value."""
    return CHARSETS.get(charset.strip().upper(), FALLBACK_CODEC) if charset else FALLBACK_CODEC


class HeaderShape:
    """What the MSH of a run of messages from one sender holds besides MSH-7 and MSH-10
    (the time and the control id, which change with every message): the rest of the header,
    read and checked once.

    :func:`read_header` keeps one per such MSH (bounded, ASCII MSH only) and reads a message
    whose MSH differs from an earlier one only in MSH-7 and MSH-10 from it: split once, no
    second check. ``derived`` is for the header's readers: a value they compute from the
    header's fields other than MSH-7 and MSH-10 can be kept there, under a key of their own,
    and then found again for every message of the shape (dict operations only: it may be
    shared by threads).
    """

    __slots__ = ("values", "head", "middle", "tail", "derived")

    def __init__(self, header: MSHHeader):
        fields = header.fields
        # the header's values but MSH-7, MSH-10 and the fields, with this shape
        self.values = {**header.__dict__, "shape": self}
        self.head, self.middle, self.tail = fields[:6], fields[7:9], fields[10:]
        self.derived: dict[Any, Any] = {}


def read_header(payload: bytes) -> MSHHeader:
    """Read MSH from the start of ``payload``; raise :class:`HeaderError` if unusable.

    An ASCII MSH that differs from one read before only in MSH-7 and MSH-10 is read from its
    :class:`HeaderShape`: the same header as the full reading gives, read at a fraction of
    its cost (tests.mllp.test_header_shape)."""
    segment = first_segment(payload)
    if segment.isascii():
        text = segment.decode("ascii")
        separator = text[3:4] or "\r"  # no CR in a segment: one part, the full reading
        parts = text.split(separator, 10)  # MSH-n is parts[n - 1], MSH-11 on in parts[10]
        if len(parts) == 11:
            datetime, control_id = parts[6], parts[9]
            parts[6] = parts[9] = ""
            key = separator.join(parts)  # the segment, MSH-7 and MSH-10 emptied
            shape = _SHAPES.get(key)
            stripped = control_id.strip()
            if shape is not None and stripped:
                header = object.__new__(MSHHeader)
                values = header.__dict__
                values.update(shape.values)
                values["message_datetime"] = datetime
                values["control_id"] = stripped
                values["fields"] = shape.head + (datetime,) + shape.middle + (control_id,) \
                    + shape.tail
                return header
            header = read_msh(segment)
            if len(_SHAPES) >= _SHAPES_MAX:  # a sender inventing headers: start again
                _SHAPES.clear()
            shape = _SHAPES[key] = HeaderShape(header)
            header.__dict__["shape"] = shape
            return header
    return read_msh(segment)


def read_msh(segment: bytes) -> MSHHeader:
    """Read an MSH ``segment`` field by field, every check made, without a shape: what
    :func:`read_header` gives for a payload starting with it."""
    if segment[:3] != b"MSH":
        found = segment[:3].decode(FALLBACK_CODEC) or "nothing"
        raise HeaderError(SEGMENT_SEQUENCE, f"the first segment is {found!r}, not MSH", "MSH^1")
    separator, encoding = read_separators(segment)
    fields, charset = _decoded_fields(segment, separator, encoding)
    return _build_header(fields, charset)


# An ASCII MSH segment with MSH-7 and MSH-10 emptied -> the shape read from it (see
# read_header): its fourth character is MSH-1, so equal keys split alike. Cleared when full.
_SHAPES: dict[str, HeaderShape] = {}
_SHAPES_MAX = 256


def msh_segment(payload: bytes) -> bytes:
    """The first segment of ``payload``; raise :class:`HeaderError` when it is not MSH."""
    segment = first_segment(payload)
    if segment[:3] != b"MSH":
        found = segment[:3].decode(FALLBACK_CODEC) or "nothing"
        raise HeaderError(SEGMENT_SEQUENCE, f"the first segment is {found!r}, not MSH", "MSH^1")
    return segment


def read_separators(segment: bytes) -> tuple[str, str]:
    """MSH-1 and MSH-2 of an MSH ``segment``; raise :class:`HeaderError` when either is unusable.

    Both must be printable ASCII punctuation, all distinct: a letter or digit would be read
    back as part of an escape sequence (``\\R\\``), a space or control byte as data.
    """
    head = segment[3:4]
    key = (head, segment[4:].split(head, 1)[0]) if head else None
    known = _CHECKED_SEPARATORS.get(key)
    if known is not None:  # the same MSH-1 and MSH-2 as an earlier message: checked then
        return known
    separator = _field_separator(segment)
    second = segment[4:].split(separator.encode("ascii"), 1)[0]
    checked = separator, _encoding_characters(second.decode(FALLBACK_CODEC), separator)
    if len(_CHECKED_SEPARATORS) < _CHECKED_SEPARATORS_MAX:
        _CHECKED_SEPARATORS[key] = checked
    return checked


# (MSH-1, MSH-2) as bytes -> what read_separators returned for them: senders use the same
# few, each checked once. Bounded: a sender inventing new ones is checked every time.
_CHECKED_SEPARATORS: dict[tuple[bytes, bytes] | None, tuple[str, str]] = {}
_CHECKED_SEPARATORS_MAX = 64


def _decoded_fields(segment: bytes, separator: str,
                    encoding: str) -> tuple[tuple[str, ...], str]:
    """The fields of MSH decoded with its MSH-18 (``fields[0]`` is MSH-1), and MSH-18."""
    if segment.isascii():  # the usual MSH: every codec of CHARSETS reads ASCII alike
        fields = segment.decode("ascii").split(separator)
        charset = fields[17].split(encoding[1], 1)[0] if len(fields) > 17 else ""
        fields[0] = separator
        return tuple(fields), charset.strip()
    parts = segment.split(separator.encode("ascii"), 18)
    charset = _first(parts[17].decode(FALLBACK_CODEC), encoding[1]) if len(parts) > 17 else ""
    text = segment.decode(header_codec(charset), errors="replace")
    return (separator,) + tuple(text.split(separator)[1:]), charset.strip()


def _field_separator(segment: bytes) -> str:
    """MSH-1: the byte right after "MSH"; must be printable ASCII punctuation."""
    if len(segment) < 4:
        raise HeaderError(DATA_TYPE, "MSH stops before its field separator (MSH-1)", "MSH^1^1")
    separator = chr(segment[3])
    if not _punctuation(separator):
        raise HeaderError(DATA_TYPE, f"invalid field separator {separator!r} (MSH-1)", "MSH^1^1")
    return separator


def _encoding_characters(value: str, separator: str) -> str:
    """MSH-2: four (five from v2.7) distinct punctuation characters."""
    valid = (
        len(value) in (4, 5)
        and len(set(value)) == len(value)
        and separator not in value
        and all(_punctuation(c) for c in value)
    )
    if not valid:
        raise HeaderError(DATA_TYPE, f"invalid encoding characters {value!r} (MSH-2)", "MSH^1^2")
    return value


def _first(value: str, separator: str) -> str:
    """The first repetition or component of ``value``."""
    return value.split(separator, 1)[0]


def _build_header(fields: tuple[str, ...], charset: str) -> MSHHeader:
    """Check the required fields and assemble the header."""
    if len(fields) >= 12 and fields[8].strip() and fields[9].strip() and fields[11].strip():
        return _assemble(fields, charset)  # MSH-9, MSH-10 and MSH-12 valued: nearly always
    for number, name in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if number > len(fields) or not fields[number - 1].strip():
            raise HeaderError(REQUIRED_FIELD_MISSING, f"MSH-{number} ({name}) is empty",
                              f"MSH^1^{number}")
    return _assemble(fields, charset)


def read_header_leniently(payload: bytes) -> MSHHeader:
    """Whatever of MSH can be read, for answering input that :func:`read_header` refuses.

    A refusal the sender can match must echo its MSH-10 and name it (MSH-3 to MSH-6) even
    when MSH-9 or MSH-12 is empty or MSH-2 is invalid. This never raises: what cannot be
    read is empty. The header's fields are encoded text in its own separators, so they can
    be echoed as they are: the sender's when MSH-1 and MSH-2 are usable; otherwise the
    defaults, with the fields split on a usable MSH-1 taken as plain text and escaped (their
    structure is unknown). When :func:`read_header` accepts ``payload``, both agree.
    """
    segment = first_segment(payload)
    try:
        separator = _field_separator(segment) if segment[:3] == b"MSH" else None
    except HeaderError:
        separator = None
    if separator is None:
        return _assemble((DEFAULT_SEPARATOR, DEFAULT_ENCODING_CHARACTERS), "")
    try:
        encoding = read_separators(segment)[1]
    except HeaderError:
        return _escaped_header(segment, separator)
    fields, charset = _decoded_fields(segment, separator, encoding)
    return _assemble(fields, charset)


def _escaped_header(segment: bytes, separator: str) -> MSHHeader:
    """The fields of an MSH whose MSH-2 is unusable, as text escaped in the default delimiters.

    Components are kept when the first character of MSH-2 can still be a component
    separator (``^~\\`` is three characters, not four, yet its ``^`` is plainly meant):
    MSH-9's trigger event then still reaches the ACK.
    """
    parts = segment.split(separator.encode("ascii"))
    charset = parts[17].decode(FALLBACK_CODEC).strip() if len(parts) > 17 else ""
    charset = charset if charset.upper() in CHARSETS else ""
    codec = header_codec(charset)
    component = parts[1][:1].decode(FALLBACK_CODEC)
    if not _punctuation(component) or component == separator:
        component = ""
    default_component = DEFAULT_ENCODING_CHARACTERS[0]
    fields = []
    for part in parts[2:]:
        text = part.decode(codec, errors="replace")
        pieces = text.split(component) if component else [text]
        fields.append(default_component.join(
            escape(piece, DEFAULT_SEPARATOR, DEFAULT_ENCODING_CHARACTERS) for piece in pieces))
    return _assemble((DEFAULT_SEPARATOR, DEFAULT_ENCODING_CHARACTERS, *fields), charset)


def _punctuation(char: str) -> bool:
    """Whether ``char`` can be a delimiter: one printable ASCII character, not a letter,
    digit or space."""
    return len(char) == 1 and char.isascii() and char.isprintable() and not char.isalnum() \
        and char != " "


def _assemble(fields: tuple[str, ...], charset: str) -> MSHHeader:
    """The header of these fields (``fields[0]`` is MSH-1), required or not."""
    f = fields + _MISSING[len(fields):]  # f[n - 1] is MSH-n, "" past the message's end
    component = f[1][0]
    message_type = f[8]
    type_parts = message_type.split(component, 2) + ["", ""]
    # The instance's dict filled in one call rather than through MSHHeader(...): a frozen
    # dataclass's __init__ sets each field with object.__setattr__, a slow call on CPython
    # 3.11, and every message's header is made here. The same object (tests.mllp.test_header).
    header = object.__new__(MSHHeader)
    header.__dict__.update(
        field_separator=f[0], encoding_characters=f[1],
        sending_application=f[2], sending_facility=f[3],
        receiving_application=f[4], receiving_facility=f[5],
        message_datetime=f[6], message_type=message_type,
        message_code=type_parts[0], trigger_event=type_parts[1],
        control_id=f[9].strip(), processing_id=f[10],
        version=f[11].split(component, 1)[0].strip(),
        accept_ack_type=f[14].strip(), application_ack_type=f[15].strip(),
        charset=charset, fields=fields, shape=None,
    )
    return header


# Empty fields up to MSH-16, the last one _assemble reads, for a short MSH.
_MISSING = ("",) * 16


def resolve_codec(charset: str) -> str:
    """A Python codec for an HL7 table 0211 name or a Python codec name.

    Raises :class:`LookupError` when it is neither.
    """
    name = charset.strip()
    codec = CHARSETS.get(name.upper())
    if codec is None:
        codec = codecs.lookup(name).name
    return codec


def decode_payload(payload: bytes, header: MSHHeader, default_charset: str) -> str:
    """Decode the whole payload with MSH-18, or ``default_charset`` when MSH-18 is empty.

    ``default_charset`` (the channel's setting) may be a table 0211 name or a
    Python codec name. Raises :class:`EncodingError`.
    """
    if header.charset:
        codec = CHARSETS.get(header.charset.upper())
        if codec is None:
            raise EncodingError(TABLE_VALUE_NOT_FOUND,
                                f"MSH-18 names an unknown character set {header.charset!r}",
                                "MSH^1^18", charset=header.charset)
        name = header.charset
    else:
        name, codec = default_charset, resolve_codec(default_charset)
    try:
        return payload.decode(codec)
    except UnicodeDecodeError as error:
        location = locate(payload, error.start, header.field_separator)
        raise EncodingError(
            DATA_TYPE, f"byte 0x{payload[error.start]:02x} at offset {error.start} is not "
            f"valid {name} ({codec})", location, charset=name, offset=error.start) from None


def locate(payload: bytes, offset: int, field_separator: str = "|") -> str:
    """The ERR-2 style location (``SEG^sequence^field``) of the byte at ``offset``."""
    start = max(payload.rfind(b"\r", 0, offset), payload.rfind(b"\n", 0, offset)) + 1
    segment_id = payload[start:start + 3]
    separator = field_separator.encode("ascii")
    field_number = payload.count(separator, start, offset)
    if segment_id == b"MSH":
        field_number += 1  # MSH-1 is the separator itself
    sequence = 1
    for line in payload[:start].replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        if line[:3] == segment_id:
            sequence += 1
    return f"{segment_id.decode(FALLBACK_CODEC)}^{sequence}^{field_number}"
