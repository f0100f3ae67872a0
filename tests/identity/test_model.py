"""
Tests for identity.model: domains, identifiers, traits and the INS.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from identity.model import (
    INS,
    INS_C,
    INS_DOMAINS,
    INS_NIA,
    INS_NIR,
    INS_NIR_DEMO,
    INS_NIR_TEST,
    IdentifierDomain,
    IdentityStatus,
    InvalidNIR,
    InvalidTraits,
    LocalIdentifier,
    Traits,
)

IDENTITY = Path(__file__).resolve().parents[2] / "identity"


def test_ins_oids_are_those_of_the_standards_notes(standards):
    """If NOTES.md §4 lists an INS OID, then the model's domain carries exactly it."""
    notes = (standards / "NOTES.md").read_text(encoding="utf-8")
    section = notes[notes.index("## 4. INS"):notes.index("## 5.")]
    rows = dict(re.findall(r"\| `([0-9.]+)` \| ([^|]+)\|", section))
    assert rows[INS_NIR.oid].startswith("INS-NIR (production")
    assert rows[INS_NIA.oid].startswith("INS-NIA")
    assert "de test" in rows[INS_NIR_TEST.oid]
    assert "de démonstration" in rows[INS_NIR_DEMO.oid]
    assert rows[INS_C.oid].startswith("INS-C")


def test_each_ins_oid_is_written_once_in_the_package():
    """If the INS OIDs appear in identity/, then only in identity/model/domains.py."""
    for path in IDENTITY.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "domains.py":
            assert "1.2.250.1.213.1.4." not in text, path


def test_domains_are_equal_by_oid_whatever_their_namespace():
    """If two senders spell one authority's namespace differently, then it is one domain."""
    assert IdentifierDomain("1.2.3", "CHU-X") == IdentifierDomain("1.2.3", "chu x")
    assert IdentifierDomain("1.2.3", "A") != IdentifierDomain("1.2.4", "A")
    assert len({IdentifierDomain("1.2.3", "A"), IdentifierDomain("1.2.3", "B")}) == 1
    assert INS_C not in INS_DOMAINS


def test_a_domain_needs_an_oid():
    """If a domain's OID is not dotted digits, then it is refused with its namespace named."""
    with pytest.raises(ValueError, match="CHU-X"):
        IdentifierDomain("CHU-X", "CHU-X")


def test_one_value_in_two_domains_is_two_identifiers():
    """If two systems both number a patient 000003, then these are two identifiers."""
    a = LocalIdentifier(IdentifierDomain("1.2.3.1"), "000003")
    b = LocalIdentifier(IdentifierDomain("1.2.3.2"), "000003")
    assert a != b
    with pytest.raises(InvalidTraits):
        LocalIdentifier(IdentifierDomain("1.2.3.1"), " 000003")


def test_an_ins_checks_its_matricule_and_domain():
    """If an INS is built, then its matricule key and its domain are checked."""
    ins = INS("279035121518989", INS_NIR_TEST, IdentityStatus.QUALIFIED)
    assert ins.qualified
    assert not INS("279035121518989", INS_NIR_TEST, IdentityStatus.VALIDATED).qualified
    with pytest.raises(InvalidNIR):
        INS("279035121518988", INS_NIR_TEST, IdentityStatus.QUALIFIED)
    with pytest.raises(InvalidTraits, match="not an INS domain"):
        INS("279035121518989", IdentifierDomain("1.2.3"), IdentityStatus.QUALIFIED)


def test_identity_statuses_are_the_pid32_codes():
    """If PID-32 carries a status code, then it maps to one status."""
    assert [s.value for s in IdentityStatus] == ["PROV", "RECUP", "VALI", "QUAL"]
    assert IdentityStatus("QUAL") is IdentityStatus.QUALIFIED


def test_traits_need_a_name_and_a_real_date():
    """If traits have no name or a malformed birth date, then they are refused naming the field."""
    with pytest.raises(InvalidTraits, match="name"):
        Traits(first_names=("JEAN",))
    with pytest.raises(InvalidTraits, match="birth date"):
        Traits("DUPONT", birth_date="1980-05-12")
    with pytest.raises(InvalidTraits, match="out of range"):
        Traits("DUPONT", birth_date="19801312")
    assert Traits(used_name="MARTIN", first_names=["ANNE"]).first_names == ("ANNE",)
