"""
Writing the index's knowledge of a person as PID fields, in PAM France shape.

The inverse of :mod:`identity.hl7.pid`: CX ``value^^^namespace&OID&ISO^type``
in PID-3 (the INS with type ``INS``), the birth name (``L``, every birth first
name in XPN.3) and the used name (``D``) in PID-5, the home address and the
``BDL`` birth place in PID-11, the phone in XTN.12, the INS status in PID-32.
Values are written through :meth:`Segment.set`, which escapes them.

test-case-name: tests.identity.hl7.test_pidwriter
"""
from __future__ import annotations

from collections.abc import Sequence

from identity.hl7.pid import BIRTH_NAME, BIRTH_PLACE, USED_NAME
from identity.model import INS_DOMAINS, LocalIdentifier, Traits
from mappings.message import Segment

ISO = "ISO"
INS_TYPE = "INS"
PSEUDONYM = "S"


def write_identifiers(segment: Segment, number: int,
                      identifiers: Sequence[LocalIdentifier]) -> None:
    """Field ``number`` (PID-3) becomes one CX repetition per identifier, in order."""
    segment.set_field(number, "")
    for rep, identifier in enumerate(identifiers, start=1):
        domain = identifier.domain
        segment.set(number, identifier.value, rep, 1)
        segment.set(number, domain.namespace, rep, 4, 1)
        segment.set(number, domain.oid, rep, 4, 2)
        segment.set(number, ISO, rep, 4, 3)
        id_type = INS_TYPE if domain in INS_DOMAINS else domain.id_type
        segment.set(number, id_type, rep, 5)


def write_traits(segment: Segment, traits: Traits) -> None:
    """PID-5, 7, 8, 11, 13 and 32 from ``traits`` (absent traits leave fields empty)."""
    rep = 1
    if traits.birth_name:
        _write_name(segment, rep, traits.birth_name, traits.first_names, BIRTH_NAME)
        rep += 1
    if traits.used_name:
        _write_name(segment, rep, traits.used_name, traits.first_names[:1], USED_NAME)
    segment.set(7, traits.birth_date or "")
    segment.set(8, traits.sex.value)
    rep = 1
    if traits.address or traits.postcode or traits.city:
        segment.set(11, traits.address or "", rep, 1)
        segment.set(11, traits.city or "", rep, 3)
        segment.set(11, traits.postcode or "", rep, 5)
        segment.set(11, "H", rep, 7)
        rep += 1
    if traits.birth_place:
        segment.set(11, BIRTH_PLACE, rep, 7)
        segment.set(11, traits.birth_place, rep, 9)
    if traits.phone:
        segment.set(13, "PRN", 1, 2)
        segment.set(13, "PH", 1, 3)
        segment.set(13, traits.phone, 1, 12)
    if traits.ins is not None:
        segment.set(32, traits.ins.status.value)


def _write_name(segment: Segment, rep: int, family: str, first_names: Sequence[str],
                kind: str) -> None:
    segment.set(5, family, rep, 1)
    if first_names:
        segment.set(5, first_names[0], rep, 2)
        if kind == BIRTH_NAME:
            segment.set(5, " ".join(first_names), rep, 3)
    segment.set(5, kind, rep, 7)


def write_pseudonym_name(segment: Segment) -> None:
    """PID-5 of a PIX answer, which discloses identifiers only (ITI TF-2a 3.9.4.2.2.6):
    the first repetition empty, the second holding only XPN.7 = S (pseudonym), so that
    no domain's name is taken for another's."""
    segment.set(5, PSEUDONYM, 2, 7)
