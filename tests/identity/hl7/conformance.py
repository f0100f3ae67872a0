"""
hl7apy's strict v2.5 validation of the responses, and the sample territory of the HL7 tests.

hl7apy models QPD as QPD-1 to QPD-3 only (QPD-3 is "user parameters, in successive
fields"): the query-specific fields ITI-9 and ITI-21 add (QPD-4 domains wanted, QPD-8 domains
to return) are refused as unknown children, and a repeated QPD-3 (ITI-21's ``@PID.5.1^X~@PID.7^Y``)
as a second QPD-3. The response is therefore validated with QPD cut after the first repetition
of QPD-3, and the tests check separately that QPD is echoed exactly as received.
"""
from __future__ import annotations

import os
import tempfile

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message

from identity.hl7.domains import DomainTable
from identity.model import IdentifierDomain, IdentityStatus

CHU = IdentifierDomain("1.2.250.1.999.1.1", "CHU-EXEMPLE")
GHT = IdentifierDomain("1.2.250.1.999.2.1", "GHT-ARVERNE")
DOMAINS = DomainTable([CHU, GHT])

# hl7apy lists table 0396's "HL7nnnn" literally (see tests/mllp/test_ack_conformance.py);
# "INS" is the identifier type PAM France adds to table 0203 for the national identifier, and
# PROV/RECUP/VALI/QUAL the identity statuses it puts in table 0445 (PID-32).
FALSE_WARNINGS = {
    "Warning: Value HL70357 not in table HL70396 in element ERR_3.CWE_3",
    "Warning: Value INS not in table HL70203 in element PID_3.CX_5",
} | {f"Warning: Value {status.value} not in table HL70445 in element PID.PID_32"
     for status in IdentityStatus}


def without_query_fields(text: str) -> str:
    """``text`` with every QPD cut after QPD-3's first repetition (see the module docstring)."""
    segments = []
    for segment in text.rstrip("\r").split("\r"):
        if segment.startswith("QPD|"):
            fields = segment.split("|")[:4]
            fields[3:] = [fields[3].split("~")[0]] if len(fields) > 3 else []
            segment = "|".join(fields)
        segments.append(segment)
    return "\r".join(segments)


def validation_problems(text: str, structure: str) -> list[str]:
    """Every error and warning of hl7apy's strict v2.5 validation but :data:`FALSE_WARNINGS`."""
    message = parse_message(without_query_fields(text), validation_level=VALIDATION_LEVEL.STRICT,
                            find_groups=True)
    assert (message.version, message.name) == ("2.5", structure)
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.txt")
        try:
            message.validate(report_file=report)
        except ValidationError:
            pass
        with open(report) as lines:
            return [line.rstrip("\n") for line in lines
                    if line.strip() and line.rstrip("\n") not in FALSE_WARNINGS]
