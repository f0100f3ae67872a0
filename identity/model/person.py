"""
Local identifiers, identity traits and the INS with its identity status.

These are the facts a message states about a patient (PID-3, PID-5, PID-7,
PID-8, PID-11, PID-13, PID-32). They are kept as the sender wrote them;
normalisation for matching lives in :mod:`identity.matching.normalise`, so
that what was received can always be shown back to a reviewer unchanged.

test-case-name: tests.identity.test_model
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from identity.model.domains import INS_DOMAINS, IdentifierDomain
from identity.model.nir import check_nir


class InvalidTraits(ValueError):
    """Traits that cannot describe a person; the message names the field."""


class Sex(enum.Enum):
    """Administrative sex (PID-8, HL7 table 0001). INSi answers only M or F."""

    MALE = "M"
    FEMALE = "F"
    OTHER = "O"
    UNKNOWN = "U"


class IdentityStatus(enum.Enum):
    """How far an identity has been checked (PID-32, RNIV; NOTES.md §4).

    Only a qualified identity (INSi call *and* a document checked) may be used
    to link deterministically or to publish to the DMP.
    """

    PROVISIONAL = "PROV"
    RECOVERED = "RECUP"
    VALIDATED = "VALI"
    QUALIFIED = "QUAL"


@dataclass(frozen=True, slots=True)
class LocalIdentifier:
    """One system's number for a patient: a value within an identifier domain."""

    domain: IdentifierDomain
    value: str

    def __post_init__(self) -> None:
        if not self.value or self.value != self.value.strip():
            raise InvalidTraits(f"identifier in {self.domain.oid}: empty or padded value {self.value!r}")


@dataclass(frozen=True, slots=True)
class INS:
    """The national health identifier and the status of the identity it came with.

    The matricule is checked (:func:`identity.model.nir.check_nir`) when the
    INS is built, so an INS object always holds a well-formed matricule.
    """

    matricule: str
    domain: IdentifierDomain
    status: IdentityStatus

    def __post_init__(self) -> None:
        if self.domain not in INS_DOMAINS:
            raise InvalidTraits(f"INS {self.matricule!r}: domain {self.domain.oid} is not an INS domain")
        object.__setattr__(self, "matricule", check_nir(self.matricule))

    @property
    def qualified(self) -> bool:
        """Whether this INS may link deterministically."""
        return self.status is IdentityStatus.QUALIFIED


def _check_date(value: str | None) -> None:
    """A birth date is YYYYMMDD digits (HL7 DT precision day) or absent."""
    if value is None:
        return
    if len(value) != 8 or not value.isdigit():
        raise InvalidTraits(f"birth date {value!r}: YYYYMMDD expected")
    month, day = int(value[4:6]), int(value[6:8])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise InvalidTraits(f"birth date {value!r}: month or day out of range")


@dataclass(frozen=True, slots=True)
class Traits:
    """The identity traits of one patient as one system knows them.

    ``first_names`` is the ordered list of birth first names (PID-5.2 then
    PID-5.3); a compound first name (``Jean-Pierre``) is one entry.
    ``used_name`` is the name in use (PID-5 with type D), often a spouse's.
    ``birth_place`` is the INSEE code of the commune of birth (PID-11 BDL).
    Every field may be missing except that a person needs at least a name.
    """

    birth_name: str | None = None
    first_names: tuple[str, ...] = ()
    birth_date: str | None = None
    sex: Sex = Sex.UNKNOWN
    used_name: str | None = None
    birth_place: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    ins: INS | None = field(default=None)

    def __post_init__(self) -> None:
        if not (self.birth_name or self.used_name):
            raise InvalidTraits("traits: neither a birth name nor a used name")
        if isinstance(self.first_names, list):
            object.__setattr__(self, "first_names", tuple(self.first_names))
        _check_date(self.birth_date)
