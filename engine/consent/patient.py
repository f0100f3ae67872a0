"""
A patient identifier as operators and HL7 write it (a CX: ``VALUE^^^NAMESPACE&OID&ISO``),
read into the (domain, value) key of the consent table.

The domain is the assigning authority's universal id (CX.4.2), as in the identity index;
a sender that names only a namespace (``VALUE^^^HOSP``) is keyed by that namespace.

test-case-name: tests.consent.test_patient
"""
from __future__ import annotations


class PatientIdentifierError(ValueError):
    """Text that is not a patient identifier with a value and an assigning authority."""


def parse_identifier(text: str) -> tuple[str, str]:
    """(domain, value) of ``VALUE^^^NAMESPACE&OID&ISO`` (or ``VALUE^^^&OID&ISO``)."""
    components = text.strip().split("^")
    value = components[0].strip()
    authority = components[3] if len(components) > 3 else ""
    parts = authority.split("&")
    domain = (parts[1] if len(parts) > 1 and parts[1] else parts[0]).strip()
    if not value or not domain:
        raise PatientIdentifierError(
            f"{text!r} is not a patient identifier: write VALUE^^^&OID&ISO (CX.1 the value, "
            "CX.4.2 the OID of its assigning authority)")
    return domain, value


def identifier_text(domain: str, value: str) -> str:
    """The CX an identifier key is written as: ``VALUE^^^&OID&ISO``."""
    return f"{value}^^^&{domain}&ISO"
