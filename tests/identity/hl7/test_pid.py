"""
Reading PID into the identity model: the PAM France samples, then each bad input.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from identity.hl7.pid import read_pid
from identity.model import INS_NIR, IdentityStatus, LocalIdentifier, Sex
from mappings.message import HL7Message
from tests.identity.hl7.conformance import CHU, DOMAINS, GHT

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "adt-pam-fr"
IPP = "00472318^^^CHU-EXEMPLE&1.2.250.1.999.1.1&ISO^PI"
INS = "248096343012736^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"
NAME = "CHASSAGNE^MARIE-THÉRÈSE^MARIE-THÉRÈSE ODETTE^^^^L"


def sample_pid(name: str):
    text = (SAMPLES / name).read_text(encoding="utf-8")
    return HL7Message.parse(text).segment("PID")


def pid(pid3: str = IPP, name: str = NAME, date: str = "19480921", sex: str = "F",
        status: str = "") -> object:
    fields = ["1", "", pid3, "", name, "", date, sex] + [""] * 23 + [status]
    return HL7Message.parse("MSH|^~\\&|A|B|C|D|2026||ADT^A28^ADT_A05|1|P|2.5\rPID|"
                            + "|".join(fields) + "\r").segment("PID")


def test_pam_france_sample_reads_into_traits_and_qualified_ins():
    """If the A40 sample's PID is read, then every PAM France trait lands in its place."""
    identity = read_pid(sample_pid("a40-merge.hl7"), DOMAINS)
    assert identity.errors == () and identity.review_reasons == ()
    assert identity.identifiers == (LocalIdentifier(CHU, "00472318"), LocalIdentifier(GHT, "7700215"),
                                    LocalIdentifier(INS_NIR, "248096343012736"))
    t = identity.traits
    assert (t.birth_name, t.used_name, t.first_names) == ("CHASSAGNE", "DUPRÉ",
                                                          ("MARIE-THÉRÈSE", "ODETTE"))
    assert (t.birth_date, t.sex, t.birth_place) == ("19480921", Sex.FEMALE, "63430")
    assert (t.address, t.postcode, t.city, t.phone) == ("14 rue Pascal", "63000",
                                                        "Clermont-Ferrand", "0473456789")
    assert (t.ins.matricule, t.ins.status) == ("248096343012736", IdentityStatus.QUALIFIED)


@pytest.mark.parametrize("name, status, place", [
    ("a31-identity-recup.hl7", IdentityStatus.RECOVERED, "99350"),
    ("a04-registration-no-ins.hl7", None, "99341"),
])
def test_other_samples(name, status, place):
    """If a recovered-INS or a no-INS sample is read, then its status and birth place follow."""
    traits = read_pid(sample_pid(name), DOMAINS).traits
    assert (traits.ins.status if traits.ins else None, traits.birth_place) == (status, place)


def test_used_name_alone_is_a_name():
    """If PID-5 has only a used name (D), then that is the name and its first name is kept."""
    traits = read_pid(pid(name="DUPRÉ^Marie^^^^^D"), DOMAINS).traits
    assert (traits.birth_name, traits.used_name, traits.first_names) == (None, "DUPRÉ", ("Marie",))


@pytest.mark.parametrize("name, birth, used, first_names", [
    # no L: the maiden name (M) or the name at birth (B) is the birth name, with its first names
    ("DUPRÉ^Marie^^^^^D~CHASSAGNE^Marie^Marie Odette^^^^M", "CHASSAGNE", "DUPRÉ",
     ("Marie", "Odette")),
    ("DUPRÉ^Marie^^^^^D~CHASSAGNE^Marie^^^^^B", "CHASSAGNE", "DUPRÉ", ("Marie",)),
    # L wins over B and M, B over M, and M over an untyped name, whatever the order
    ("FAURE^Anne^^^^^M~CHASSAGNE^Marie^^^^^L", "CHASSAGNE", None, ("Marie",)),
    ("FAURE^Anne^^^^^M~ROUX^Léa^^^^^B", "ROUX", None, ("Léa",)),
    ("DUPRÉ^Marie~CHASSAGNE^Marie^^^^^M", "CHASSAGNE", None, ("Marie",)),
    # an untyped name is still read as the birth name when nothing better is given
    ("CHASSAGNE^Marie", "CHASSAGNE", None, ("Marie",)),
    # other types (A alias, N nickname) are not the birth name
    ("MIMI^Marie^^^^^N~DUPRÉ^Marie^^^^^D", None, "DUPRÉ", ("Marie",)),
])
def test_birth_name_types(name, birth, used, first_names):
    """If PID-5 has no L repetition, then B, then M, then an untyped one is the birth name
    (HL7 table 0200), its first names with it; D stays the used name."""
    traits = read_pid(pid(name=name), DOMAINS).traits
    assert (traits.birth_name, traits.used_name, traits.first_names) == (birth, used, first_names)


@pytest.mark.parametrize("name, first_names", [
    # a sender without hyphens: XPN.2's two words are one first name, repeated in XPN.3
    ("FOULOY^MARIE CHRISTINE^MARIE CHRISTINE HELENE^^^^L", ("MARIE CHRISTINE", "HELENE")),
    ("FOULOY^Marie Christine^MARIE CHRISTINE^^^^L", ("Marie Christine",)),
    ("FOULOY^JEAN PIERRE^LOUIS^^^^L", ("JEAN PIERRE", "LOUIS")),  # XPN.3 without the first
    ("FOULOY^MARIE-CHRISTINE^MARIE-CHRISTINE HELENE^^^^L", ("MARIE-CHRISTINE", "HELENE")),
    ("FOULOY^MARIE^MARIE CHRISTINE^^^^L", ("MARIE", "CHRISTINE")),
    ("FOULOY^^MARIE CHRISTINE^^^^L", ("MARIE", "CHRISTINE")),
])
def test_first_name_of_xpn2_is_not_split_by_xpn3(name, first_names):
    """If XPN.3 starts with the words of XPN.2, then they are that one first name (spaces
    included), not as many more first names."""
    assert read_pid(pid(name=name), DOMAINS).traits.first_names == first_names


def test_namespace_alone_names_a_known_domain():
    """If CX.4 gives only a namespace a known domain carries, then the domain is found."""
    identity = read_pid(pid(pid3="123^^^GHT-ARVERNE^PI"), DOMAINS)
    assert identity.identifiers == (LocalIdentifier(GHT, "123"),)


def test_ins_c_is_ignored_with_a_note():
    """If PID-3 carries an obsolete INS-C, then it is neither an INS nor an identifier."""
    identity = read_pid(pid(pid3=IPP + "~1234567890123456789012^^^&1.2.250.1.213.1.4.2&ISO^INS-C"),
                        DOMAINS)
    assert identity.identifiers == (LocalIdentifier(CHU, "00472318"),)
    assert identity.traits.ins is None and identity.review_reasons == ()
    assert "INS-C" in identity.notes[0]


ERRORS = {
    "no identifier": (dict(pid3=""), 101, "PID^1^3"),
    "empty CX.1": (dict(pid3="^^^CHU-EXEMPLE&1.2.250.1.999.1.1&ISO^PI"), 101, "PID^1^3^1^1"),
    "unknown domain": (dict(pid3=IPP + "~9^^^OTHER&1.2.3.4&ISO^PI"), 204, "PID^1^3^2^4"),
    "no assigning authority": (dict(pid3="123^^^^PI"), 101, "PID^1^3^1^4"),
    "INS with a bad key": (dict(pid3=IPP + "~248096343012799^^^&1.2.250.1.213.1.4.8&ISO^INS",
                                status="QUAL"), 102, "PID^1^3^2^1"),
    "unknown status": (dict(status="SURE"), 103, "PID^1^32"),
    "no name": (dict(name=""), 101, "PID^1^5"),
    "bad birth date": (dict(date="1948-09-21"), 102, "PID^1^7"),
    "sex not in table": (dict(sex="X"), 103, "PID^1^8"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_an_error_at_its_field(case):
    """If a PID cannot describe a patient, then the error has the right code and location."""
    kwargs, code, location = ERRORS[case]
    identity = read_pid(pid(**kwargs), DOMAINS)
    assert not identity.ok
    assert [(e.code, e.location) for e in identity.errors] == [(code, location)]
    assert identity.errors[0].text.startswith("PID^1^")  # the text names where, too


REVIEWS = {
    "two INS": dict(pid3=f"{INS}~279035121518989^^^&1.2.250.1.213.1.4.8&ISO^INS", status="QUAL"),
    "qualified without INS": dict(status="QUAL"),
    "INS without status": dict(pid3=f"{IPP}~{INS}"),
}


@pytest.mark.parametrize("case", sorted(REVIEWS))
def test_contradictory_traits_are_review_reasons(case):
    """If a PID reads but contradicts itself, then it is kept with a review reason, no error."""
    identity = read_pid(pid(**REVIEWS[case]), DOMAINS)
    assert identity.ok and len(identity.review_reasons) == 1
