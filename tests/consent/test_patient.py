"""Tests for engine.consent.patient: patient identifiers as operators write them."""
from __future__ import annotations

import pytest

from engine.consent.patient import PatientIdentifierError, identifier_text, parse_identifier


@pytest.mark.parametrize("text,key", [
    ("279035121518989^^^&1.2.250.1.213.1.4.10&ISO", ("1.2.250.1.213.1.4.10", "279035121518989")),
    ("000003^^^CHU-X&000897406&N^PI", ("000897406", "000003")),
    ("12^^^HOSP", ("HOSP", "12")),
    (" 12^^^HOSP ", ("HOSP", "12")),
])
def test_an_identifier_is_read_into_its_domain_and_value(text, key):
    """If a CX names an OID, then it is the domain; if only a namespace, then that."""
    assert parse_identifier(text) == key


@pytest.mark.parametrize("text", ["12", "^^^&1.2.3&ISO", "12^^^", ""])
def test_an_identifier_without_value_or_authority_is_refused(text):
    """If CX.1 or CX.4 is missing, then the error says how to write one."""
    with pytest.raises(PatientIdentifierError, match="VALUE\\^\\^\\^&OID&ISO"):
        parse_identifier(text)


def test_a_key_is_written_back_as_a_cx():
    assert identifier_text("1.2.3", "9") == "9^^^&1.2.3&ISO"
