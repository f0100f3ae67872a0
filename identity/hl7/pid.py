"""
Reading a PID segment (IHE PAM France shape) into the identity model.

PID-3 repetitions are CX ``value^^^namespace&OID&ISO^type``: a local number
(``PI``) and, in France, the INS (``INS``, in an INS domain) whose reliability
is PID-32 (``PROV``/``RECUP``/``VALI``/``QUAL``). PID-5 repeats XPN with the
birth name (type ``L``) and the used name (``D``); a sender without ``L`` may give the
birth name as ``B`` (name at birth) or ``M`` (maiden name, HL7 table 0200), which are
taken in that order, then an untyped repetition; in PAM France XPN.3 lists
every birth first name, the first one repeated from XPN.2. PID-11 holds the
home address and, as a repetition of type ``BDL``, the INSEE code of the
birth place in XAD.9; PID-13 the phone (XTN.12 in PAM France, else XTN.1).

What cannot be read is an :class:`mllp.ack.HL7Error` naming the field (ERR-2
location): the caller answers AE with it and keeps the message. What reads but
contradicts itself (two INS, a qualified status without an INS) is a review
reason: the identity is kept but never linked automatically.

test-case-name: tests.identity.hl7.test_pid
"""
from __future__ import annotations

from dataclasses import dataclass

from identity.hl7.domains import DomainTable
from identity.model import (
    INS,
    INS_C,
    INS_DOMAINS,
    IdentityStatus,
    InvalidNIR,
    InvalidTraits,
    LocalIdentifier,
    Sex,
    Traits,
)
from mappings.message import Segment, is_null
from mllp.codes import DATA_TYPE, REQUIRED_FIELD_MISSING, TABLE_VALUE_NOT_FOUND, UNKNOWN_KEY
from mllp.ack import HL7Error

BIRTH_PLACE = "BDL"
BIRTH_NAME = "L"
USED_NAME = "D"
# XPN.7 types read as the birth name, best first: legal (PAM France's birth name), name at
# birth, maiden name, then none given
BIRTH_NAME_TYPES = (BIRTH_NAME, "B", "M", "")


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """What one PID says: identifiers (the INS among them), traits, and what went wrong."""

    identifiers: tuple[LocalIdentifier, ...]
    traits: Traits | None
    errors: tuple[HL7Error, ...] = ()
    review_reasons: tuple[str, ...] = ()  # contradictions: never link automatically
    notes: tuple[str, ...] = ()  # what was skipped (a null, an INS-C): told, not reviewed

    @property
    def ok(self) -> bool:
        return not self.errors and self.traits is not None


def read_identifiers(segment: Segment, number: int, domains: DomainTable,
                     where: str) -> tuple[list[LocalIdentifier], list[HL7Error], list[str]]:
    """The CX repetitions of field ``number`` (PID-3, MRG-1): identifiers, errors, notes.

    ``where`` is the ERR-2 prefix (``"PID^1"``). A repetition in the obsolete INS-C
    domain is skipped with a note: it is never an INS and never a local number; so is an
    explicit null (``""``), which some PIX sources send for a domain they clear.
    """
    identifiers, errors, notes = [], [], []
    for rep in range(1, len(segment.repetitions(number)) + 1):
        here = f"{where}^{number}^{rep}"
        value, namespace, oid = (segment.get(number, rep, 1), segment.get(number, rep, 4, 1),
                                 segment.get(number, rep, 4, 2))
        if not value:
            errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"{here}: CX.1 (the identifier) empty",
                                   f"{here}^1"))
            continue
        if is_null(value):  # "" asks a receiver to delete its value: nothing to index
            notes.append(f"{here}: explicit null identifier ignored")
            continue
        if oid == INS_C.oid:
            notes.append(f"{here}: INS-C {value} ignored (obsolete)")
            continue
        domain = domains.find(namespace, oid)
        if domain is None:
            named = "&".join(part for part in (namespace, oid) if part) or "no assigning authority"
            code = UNKNOWN_KEY if (namespace or oid) else REQUIRED_FIELD_MISSING
            errors.append(HL7Error(code, f"{here}: identifier {value} in unknown domain {named}",
                                   f"{here}^4"))
            continue
        identifiers.append(LocalIdentifier(domain, value))
    return identifiers, errors, notes


def read_pid(segment: Segment, domains: DomainTable, sequence: int = 1) -> PatientIdentity:
    """The identity one PID segment states (``sequence``: which PID of the message, for ERR-2)."""
    where = f"PID^{sequence}"
    identifiers, errors, notes = read_identifiers(segment, 3, domains, where)
    if not segment.repetitions(3):
        errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"{where}^3: no patient identifier",
                               f"{where}^3"))
    ins, ins_errors, reasons = _read_ins(segment, identifiers, where)
    errors += ins_errors
    if ins_errors:
        identifiers = [i for i in identifiers if i.domain not in INS_DOMAINS]
    traits = None
    try:
        traits = _read_traits(segment, ins, where, errors)
    except InvalidTraits as error:
        errors.append(HL7Error(DATA_TYPE, f"{where}: {error}", where))
    return PatientIdentity(tuple(identifiers), traits, tuple(errors), tuple(reasons), tuple(notes))


def _read_ins(segment: Segment, identifiers: list[LocalIdentifier],
              where: str) -> tuple[INS | None, list[HL7Error], list[str]]:
    """The INS among the identifiers with its PID-32 status; errors; review reasons."""
    status_code = segment.get(32)
    status = next((s for s in IdentityStatus if s.value == status_code), None)
    if status_code and status is None:
        return None, [HL7Error(TABLE_VALUE_NOT_FOUND, f"{where}^32: unknown identity status "
                               f"{status_code!r}", f"{where}^32")], []
    found = [i for i in identifiers if i.domain in INS_DOMAINS]
    reasons = []
    if len({i.value for i in found}) > 1:
        reasons.append(f"{where}^3: two INS matricules " + " and ".join(i.value for i in found))
    if not found:
        if status is IdentityStatus.QUALIFIED:
            reasons.append(f"{where}^32: identity qualified but no INS in PID-3")
        return None, [], reasons
    if status is None:
        reasons.append(f"{where}^32: INS given without an identity status, taken as provisional")
    try:
        ins = INS(found[0].value, found[0].domain, status or IdentityStatus.PROVISIONAL)
        return ins, [], reasons
    except (InvalidNIR, InvalidTraits) as error:
        rep = identifiers.index(found[0]) + 1
        here = f"{where}^3^{rep}"
        return None, [HL7Error(DATA_TYPE, f"{here}: {error}", f"{here}^1")], reasons


def _read_traits(segment: Segment, ins: INS | None, where: str,
                 errors: list[HL7Error]) -> Traits | None:
    """Traits from PID-5/7/8/11/13; a missing name or a bad date or sex is an error."""
    birth_name, first_names, used_name = _read_names(segment)
    if not (birth_name or used_name):
        errors.append(HL7Error(REQUIRED_FIELD_MISSING, f"{where}^5: no family name", f"{where}^5"))
        return None
    birth_date = segment.get(7)[:8] or None
    if birth_date is not None and (len(birth_date) != 8 or not birth_date.isdigit()):
        errors.append(HL7Error(DATA_TYPE, f"{where}^7: birth date {segment.get(7)!r} is not "
                               "YYYYMMDD", f"{where}^7"))
        return None
    sex_code = segment.get(8)
    sex = next((s for s in Sex if s.value == sex_code), None) if sex_code else Sex.UNKNOWN
    if sex is None:
        errors.append(HL7Error(TABLE_VALUE_NOT_FOUND, f"{where}^8: sex {sex_code!r} not in "
                               "table 0001", f"{where}^8"))
        return None
    address = _read_address(segment)
    return Traits(birth_name=birth_name, first_names=first_names, birth_date=birth_date, sex=sex,
                  used_name=used_name, phone=_read_phone(segment), ins=ins, **address)


def _read_names(segment: Segment) -> tuple[str | None, tuple[str, ...], str | None]:
    """Birth name, birth first names and used name from the PID-5 repetitions."""
    birth = used = None
    first: tuple[str, ...] = ()
    best = len(BIRTH_NAME_TYPES)  # rank of the birth name taken so far
    for rep in range(1, len(segment.repetitions(5)) + 1):
        family, kind = segment.get(5, rep, 1), segment.get(5, rep, 7)
        if not family:
            continue
        if kind == USED_NAME:
            used = used or family
        elif kind in BIRTH_NAME_TYPES and BIRTH_NAME_TYPES.index(kind) < best:
            best, birth = BIRTH_NAME_TYPES.index(kind), family
            first = _first_names(segment.get(5, rep, 2), segment.get(5, rep, 3))
    if birth is None and used is not None and not first:
        reps = range(1, len(segment.repetitions(5)) + 1)
        rep = next(r for r in reps if segment.get(5, r, 1) == used)
        first = _first_names(segment.get(5, rep, 2), segment.get(5, rep, 3))
    return birth, first, used


def _first_names(given: str, others: str) -> tuple[str, ...]:
    """XPN.2 then the XPN.3 list; PAM France repeats XPN.2 at the start of XPN.3.

    XPN.3 separates first names by spaces, and a sender without hyphens writes the
    compound ``JEAN PIERRE`` in XPN.2 and ``JEAN PIERRE MARIE`` in XPN.3: the words of
    XPN.2 at the start of XPN.3 are that one first name repeated, not more first names.
    """
    listed = others.split()
    repeated = given.split()
    if repeated and [w.casefold() for w in listed[:len(repeated)]] == \
            [w.casefold() for w in repeated]:
        listed = listed[len(repeated):]
    return ((given,) if given else ()) + tuple(listed)


def _read_address(segment: Segment) -> dict[str, str | None]:
    """Home address (first non-BDL repetition) and INSEE birth place (BDL, XAD.9)."""
    found: dict[str, str | None] = {"address": None, "postcode": None, "city": None,
                                    "birth_place": None}
    for rep in range(1, len(segment.repetitions(11)) + 1):
        if segment.get(11, rep, 7) == BIRTH_PLACE:
            found["birth_place"] = found["birth_place"] or segment.get(11, rep, 9) or None
        elif found["address"] is None and found["postcode"] is None:
            found["address"] = segment.get(11, rep, 1) or None
            found["postcode"] = segment.get(11, rep, 5) or None
            found["city"] = segment.get(11, rep, 3) or None
    return found


def _read_phone(segment: Segment) -> str | None:
    """The first PID-13 number: XTN.12 (unformatted, PAM France) or XTN.1."""
    for rep in range(1, len(segment.repetitions(13)) + 1):
        number = segment.get(13, rep, 12) or segment.get(13, rep, 1)
        if number:
            return number
    return None
