"""
Identifier domains (assigning authorities) and the one definition of the INS OIDs.

Every system of a territory numbers its patients in its own domain: an HL7
assigning authority ``namespace&OID&ISO`` plus an identifier type code (CX.5,
``PI`` for a local patient identifier, ``INS`` for the national health
identifier in PAM FR, ``NH`` in XDS metadata). The domain is what makes two equal
values different identifiers: patient 000003 of one hospital is not patient
000003 of the next.

The INS OIDs come from ``shared/standards/NOTES.md`` §4.

test-case-name: tests.identity.test_model
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdentifierDomain:
    """An assigning authority: who issued an identifier.

    ``oid`` is the universal id (CX.4.2) and identifies the domain; the
    ``namespace`` (CX.4.1) is a label that senders spell as they like, so it
    takes no part in equality. ``id_type`` is the CX.5 code the domain's
    identifiers usually carry.
    """

    oid: str
    namespace: str = ""
    id_type: str = "PI"

    def __post_init__(self) -> None:
        if not self.oid or not all(part.isdigit() for part in self.oid.split(".")):
            raise ValueError(f"identifier domain {self.namespace!r}: {self.oid!r} is not an OID")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentifierDomain) and other.oid == self.oid

    def __hash__(self) -> int:
        return hash(self.oid)


INS_NIR = IdentifierDomain("1.2.250.1.213.1.4.8", "ASIP-SANTE-INS-NIR", "INS")
"""INS-NIR: the person's NIR used as national health identifier (production)."""

INS_NIA = IdentifierDomain("1.2.250.1.213.1.4.9", "ASIP-SANTE-INS-NIA", "INS")
"""INS-NIA: a temporary matricule for a person still waiting for a NIR (production)."""

INS_NIR_TEST = IdentifierDomain("1.2.250.1.213.1.4.10", "ASIP-SANTE-INS-NIR-TEST", "INS")
"""INS-NIR of the test platforms; every ANS sample uses it."""

INS_NIR_DEMO = IdentifierDomain("1.2.250.1.213.1.4.11", "ASIP-SANTE-INS-NIR-DEMO", "INS")
"""INS-NIR of the demonstration platforms."""

INS_C = IdentifierDomain("1.2.250.1.213.1.4.2", "ASIP-SANTE-INS-C", "INS-C")
"""The old computed INS, obsolete: recognised so that it is never taken for an INS."""

INS_DOMAINS = frozenset({INS_NIR, INS_NIA, INS_NIR_TEST, INS_NIR_DEMO})
"""The domains whose identifiers are an INS matricule (NIR or NIA, 13 digits + key)."""
