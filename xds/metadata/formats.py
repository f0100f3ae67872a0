"""
Value formats of XDS.b metadata (ITI TF-3 §4.2.3.1): HL7 v2 DTM, CX, XCN,
XON in slots and identifiers, OIDs and uniqueIds, hash, size, language and
MIME type.

Each checker returns ``None`` when the value is well-formed, else a short
sentence saying what is wrong, so that the caller can name the object and
attribute around it. Plain ``split`` rather than regular expressions: the
grammar is HL7's component and sub-component separators (XML text, a set of
characters, is the one regular expression).

test-case-name: tests.xds.test_formats
"""
from __future__ import annotations

import calendar
import functools
import re
import uuid

MAX_OID = 64                 # ITI TF-3 §4.2.3.2.26 (uniqueId root)
MAX_EXTENSION = 16           # ITI TF-3 §4.2.3.2.26 (uniqueId extension)
MAX_UNIQUE_ID = 128
_DTM_LENGTHS = (4, 6, 8, 10, 12, 14)
_HEX = set("0123456789abcdefABCDEF")
#: The same codes, OIDs and authorities come in every submission: each checker of one value
#: remembers its last answers (pure functions of the value).
_remembered = functools.lru_cache(maxsize=4096)


@_remembered
def oid_problem(value: str) -> str | None:
    """An ISO OID: digits and dots, no leading zero, first arc 0-2, at most 64 characters."""
    if not value:
        return "is empty"
    if len(value) > MAX_OID:
        return f"is {len(value)} characters, over the {MAX_OID} an OID may have"
    arcs = value.split(".")
    if len(arcs) < 2 or arcs[0] not in ("0", "1", "2"):
        return "is not an OID (first arc 0, 1 or 2, then at least one more)"
    for arc in arcs:
        if not arc.isdigit() or not arc.isascii() or (len(arc) > 1 and arc[0] == "0"):
            return f"is not an OID (arc {arc!r})"
    return None


def unique_id_problem(value: str, *, extension_allowed: bool) -> str | None:
    """A uniqueId: an OID, or (DocumentEntry only) ``root^extension``."""
    if len(value) > MAX_UNIQUE_ID:
        return f"is {len(value)} characters, over the {MAX_UNIQUE_ID} a uniqueId may have"
    root, caret, extension = value.partition("^")
    if caret and not extension_allowed:
        return "must be a plain OID (no ^extension)"
    if caret and not 0 < len(extension) <= MAX_EXTENSION:
        return f"has an extension of {len(extension)} characters (1 to {MAX_EXTENSION})"
    problem = oid_problem(root)
    return f"root {problem}" if problem and caret else problem


@_remembered
def dtm_problem(value: str) -> str | None:
    """An HL7 DTM in UTC as XDS wants it: YYYY[MM[DD[hh[mm[ss]]]]], no zone, real date."""
    if not (value.isdigit() and value.isascii() and len(value) in _DTM_LENGTHS):
        return "is not YYYY[MM[DD[hh[mm[ss]]]]] (digits only, no time zone)"
    parts = [int(value[i:i + 2]) for i in range(4, len(value), 2)]
    limits = [(1, 12), (1, 31), (0, 23), (0, 59), (0, 59)]
    for number, (low, high) in zip(parts, limits):
        if not low <= number <= high:
            return "is not a real date and time"
    if len(parts) >= 2 and parts[1] > calendar.monthrange(int(value[:4]), parts[0])[1]:
        return "is not a real date"
    return None


def _assigning_authority_problem(value: str, what: str) -> str | None:
    """An HD sub-component triple ``namespace&OID&ISO``: the OID and ``ISO`` required."""
    parts = value.split("&")
    if len(parts) != 3 or parts[2] != "ISO":
        return f"{what} must be '&<OID>&ISO', not {value!r}"
    problem = oid_problem(parts[1])
    return f"{what} OID {problem}" if problem else None


@_remembered
def cx_problem(value: str) -> str | None:
    """A patient identifier CX ``id^^^&OID&ISO`` (a CX.5 type such as NH is allowed)."""
    components = value.split("^")
    if not components[0]:
        return "has no identifier (CX.1)"
    if any(components[1:3]) or len(components) < 4:
        return "must be 'id^^^&<OID>&ISO' (CX.2 and CX.3 empty, CX.4 the assigning authority)"
    return _assigning_authority_problem(components[3], "CX.4")


@_remembered
def xcn_problem(value: str) -> str | None:
    """A person XCN: an identifier (XCN.1) or a family name (XCN.2); XCN.9 an ISO authority."""
    components = value.split("^")
    if not components[0] and not (len(components) > 1 and components[1]):
        return "has neither an identifier (XCN.1) nor a family name (XCN.2)"
    if len(components) > 8 and components[8]:
        return _assigning_authority_problem(components[8], "XCN.9")
    return None


@_remembered
def xon_problem(value: str) -> str | None:
    """An organisation XON: a name (XON.1); an XON.10 identifier needs XON.6 unless an OID."""
    components = value.split("^")
    if not components[0]:
        return "has no organisation name (XON.1)"
    if len(components) > 9 and components[9] and oid_problem(components[9]):
        authority = components[5] if len(components) > 5 else ""
        return _assigning_authority_problem(authority, "XON.6")
    return None


def hash_problem(value: str) -> str | None:
    """The SHA-1 of the document: 40 hexadecimal digits."""
    if len(value) != 40 or not set(value) <= _HEX:
        return "is not a SHA-1 in hexadecimal (40 digits)"
    return None


def size_problem(value: str) -> str | None:
    """The document's size in octets: a non-negative decimal integer."""
    if not (value.isdigit() and value.isascii()):
        return "is not a whole number of octets"
    return None


@_remembered
def language_problem(value: str) -> str | None:
    """An RFC 3066 language tag such as ``fr-FR``."""
    subtags = value.split("-")
    if not all(0 < len(tag) <= 8 and tag.isascii() and tag.isalnum() for tag in subtags) \
            or not subtags[0].isalpha():
        return "is not a language tag such as 'fr-FR'"
    return None


@_remembered
def mime_type_problem(value: str) -> str | None:
    """A MIME type ``type/subtype`` without parameters."""
    kind, slash, subtype = value.partition("/")
    if not (kind and slash and subtype) or any(c in value for c in " ;,\t"):
        return "is not a MIME type such as 'text/xml'"
    return None


def entry_uuid_problem(value: str) -> str | None:
    """An entryUUID: ``urn:uuid:`` and a UUID, or a symbolic id the registry will replace."""
    if not value:
        return "is empty"
    if value.startswith("urn:uuid:"):
        try:
            uuid.UUID(value[len("urn:uuid:"):])
        except ValueError:
            return "starts with urn:uuid: but is not a UUID"
    return None


#: What XML 1.0 cannot carry: control characters but tab, LF, CR; U+FFFE, U+FFFF; surrogates.
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text_problem(value: str) -> str | None:
    """Text XML 1.0 can carry: no control character but tab, LF, CR; no U+FFFE/U+FFFF or
    lone surrogate (HL7 v2 input can hold such bytes; lxml would refuse to write them)."""
    found = _NOT_XML_TEXT.search(value)
    if found:
        return f"contains U+{ord(found.group()):04X}, a character XML cannot carry"
    return None
