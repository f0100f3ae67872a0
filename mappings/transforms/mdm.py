"""
The document an MDM^T02 carries, and what TXA/PID/MSH say about it, as plain values.

Why here: reading HL7 v2 belongs to mappings/, while the XDS submission built from these
values belongs to xds/ (:mod:`xds.transforms.mdm`), which knows nothing of HL7 messages. The
:class:`MdmDocument` below is the whole interface between the two.

The document is OBX-5 of the first OBX whose OBX-2 is ``ED`` (source^type^subtype^encoding^
data): ``Base64`` data is decoded strictly, ``A`` (or no encoding) is the text, unescaped, as
UTF-8. The MIME type is type/subtype in lower case, with HL7's ``AP`` read as
``application`` (``AP^PDF`` → ``application/pdf``). People are given back as XCN text with
the standard delimiters, whatever delimiters the message used.

test-case-name: tests.xds.test_mdm_submission
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mappings.message import HL7Message, Segment

__all__ = ["MdmDocument", "MdmError", "PatientId", "read_mdm"]

MEDIA_TYPES = {"AP": "application", "TEXT": "text", "IM": "image", "AU": "audio",
               "VIDEO": "video", "MULTIPART": "multipart"}
_XCN_COMPONENTS = 14
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class MdmError(ValueError):
    """The message carries no usable document; the text says what and where."""


@dataclass(frozen=True)
class PatientId:
    """One PID-3 repetition: value, assigning authority OID, identifier type (PI, INS…)."""

    value: str
    oid: str
    type_code: str = ""


@dataclass(frozen=True)
class MdmDocument:
    """What an MDM^T02 says of its document (empty strings where the message is silent)."""

    content: bytes
    mime_type: str
    patient_ids: tuple[PatientId, ...] = ()
    identity_status: str = ""                  # PID-32 (QUAL, VALI, …)
    family: str = ""
    given: str = ""
    birth_date: str = ""
    sex: str = ""
    unique_id: str = ""                        # TXA-12 as OID^extension (or the OID)
    type_code: tuple[str, str, str] = ("", "", "")      # OBX-3 code, display, system
    local_type: tuple[str, str, str] = ("", "", "")     # TXA-2
    creation_time: str = ""                    # TXA-6, else TXA-4, else MSH-7
    message_time: str = ""                     # MSH-7
    authors: tuple[str, ...] = ()              # XCN of TXA-9, else TXA-5
    status: str = ""                           # TXA-17
    facility: tuple[str, str] = ("", "")       # MSH-4 name, OID


def read_mdm(message: HL7Message) -> MdmDocument:
    """The document of an MDM^T02 and its description, or :class:`MdmError`."""
    msh, pid, txa = message.msh, message.segment("PID"), message.segment("TXA")
    if txa is None:
        raise MdmError("MDM has no TXA segment: the document is not described")
    ed = next((obx for obx in message.segments("OBX") if obx.get(2) == "ED"), None)
    if ed is None:
        raise MdmError("MDM has no OBX with OBX-2 ED: no document to submit")
    content, mime_type = _encapsulated(ed)
    return MdmDocument(
        content=content, mime_type=mime_type,
        patient_ids=_patient_ids(pid) if pid else (),
        identity_status=pid.get(32) if pid else "",
        family=pid.get(5, 1, 1) if pid else "", given=pid.get(5, 1, 2) if pid else "",
        birth_date=pid.get(7) if pid else "", sex=pid.get(8) if pid else "",
        unique_id=_unique_id(txa),
        type_code=tuple(ed.get(3, 1, c) for c in (1, 2, 3)),
        local_type=tuple(txa.get(2, 1, c) for c in (1, 2, 3)),
        creation_time=txa.get(6) or txa.get(4) or msh.get(7),
        message_time=msh.get(7),
        authors=tuple(_xcn(txa, f) for f in (9, 5) if txa.get(f, 1, 1) or txa.get(f, 1, 2))[:1],
        status=txa.get(17),
        facility=(msh.get(4, 1, 1), msh.get(4, 1, 2)))


def _encapsulated(obx: Segment) -> tuple[bytes, str]:
    kind, subtype, encoding, data = (obx.get(5, 1, c) for c in (2, 3, 4, 5))
    mime_type = f"{MEDIA_TYPES.get(kind.upper(), kind.lower())}/{subtype.lower()}"
    if not kind or not subtype:
        raise MdmError(f"OBX-5 (ED) has no type/subtype (OBX-5.2 {kind!r}, 5.3 {subtype!r})")
    if encoding.lower() == "base64":
        try:
            return base64.b64decode("".join(data.split()), validate=True), mime_type
        except (binascii.Error, ValueError) as error:
            raise MdmError(f"OBX-5.5 is not valid Base64 ({error})") from None
    if encoding.upper() in ("A", ""):
        return data.encode("utf-8"), mime_type
    raise MdmError(f"OBX-5.4 encoding {encoding!r} is not supported (Base64 or A)")


def _patient_ids(pid: Segment) -> tuple[PatientId, ...]:
    found = []
    for repetition in range(1, len(pid.repetitions(3)) + 1):
        value = pid.get(3, repetition, 1)
        if value:
            found.append(PatientId(value, pid.get(3, repetition, 4, 2),
                                   pid.get(3, repetition, 5)))
    return tuple(found)


def _unique_id(txa: Segment) -> str:
    """TXA-12 (EI: entity^namespace^OID^ISO) as ``OID^entity``, the XDS uniqueId form.

    Without EI.3, an EI.1 written as ``<OID>.<local>`` (the ANS samples'
    ``1.2.250.1.71.4.2.2.120456789.A71024000081``) is read as that OID and extension.
    """
    entity, oid = txa.get(12, 1, 1), txa.get(12, 1, 3)
    if oid and entity:
        return f"{oid}^{entity}"
    root, _, local = entity.rpartition(".")
    if not oid and _OID.match(root) and not local.isdigit():
        return f"{root}^{local}"
    return oid or entity


def _xcn(segment: Segment, number: int) -> str:
    """An XCN re-written with the standard delimiters (``^`` and ``&``), values escaped."""
    components = []
    for component in range(1, _XCN_COMPONENTS + 1):
        subs = [_escape(segment.get(number, 1, component, s)) for s in range(1, 4)]
        components.append("&".join(subs).rstrip("&"))
    return "^".join(components).rstrip("^")


def _escape(text: str) -> str:
    for raw, escaped in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"),
                         ("~", "\\R\\")):
        text = text.replace(raw, escaped)
    return text
