"""
Writing traits as a PAM France PID, read back by identity.hl7.pid: what is written is what is read.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from identity.hl7.pid import read_pid
from identity.hl7.pidwriter import write_identifiers, write_traits
from identity.model import INS, INS_NIR, IdentityStatus, LocalIdentifier, Sex, Traits
from mappings.message import HL7Message
from tests.identity.hl7.conformance import CHU, DOMAINS

FULL = Traits(birth_name="CHASSAGNE", first_names=("MARIE THÉRÈSE", "ODETTE", "Anne-Laure"),
              birth_date="19480921", sex=Sex.FEMALE, used_name="DUPRÉ", birth_place="63430",
              address="14 rue Pascal", postcode="63000", city="Clermont-Ferrand",
              phone="0473456789",
              ins=INS("248096343012736", INS_NIR, IdentityStatus.QUALIFIED))


def written(traits: Traits) -> HL7Message:
    message = HL7Message.parse("MSH|^~\\&|A|B|C|D|2026||ADT^A04^ADT_A01|1|P|2.5\rPID|1\r")
    identifiers = [LocalIdentifier(CHU, "00472318")]
    if traits.ins is not None:
        identifiers.append(LocalIdentifier(traits.ins.domain, traits.ins.matricule))
    write_identifiers(message.segment("PID"), 3, identifiers)
    write_traits(message.segment("PID"), traits)
    return message


def read_back(traits: Traits) -> Traits:
    identity = read_pid(HL7Message.parse(written(traits).to_text()).segment("PID"), DOMAINS)
    assert identity.errors == () and identity.review_reasons == ()
    return identity.traits


def test_every_trait_comes_back():
    """If full traits are written and read, then each one comes back unchanged, a first
    first name written with a space instead of a hyphen included."""
    assert read_back(FULL) == FULL


def test_pam_france_shape_of_the_names():
    """If names are written, then PID-5 holds the birth name (L) with every first name in
    XPN.3, then the used name (D) with the first first name only."""
    pid = written(FULL).segment("PID")
    assert pid.field(5) == ("CHASSAGNE^MARIE THÉRÈSE^MARIE THÉRÈSE ODETTE Anne-Laure^^^^L~"
                            "DUPRÉ^MARIE THÉRÈSE^^^^^D")


words = st.text(alphabet="ABCDEÉÈHILMNORSTUYZ", min_size=1, max_size=8)
first_first = st.lists(words, min_size=1, max_size=3).map(" ".join)  # JEAN PIERRE: one name
others = st.lists(words, min_size=1, max_size=2).map("-".join)  # later ones: hyphens only


@settings(max_examples=200, deadline=None)
@given(st.tuples(first_first).flatmap(
    lambda first: st.lists(others, max_size=3).map(lambda rest: first + tuple(rest))))
def test_first_names_come_back(first_names):
    """If any first-name list is written (the first possibly with spaces, the others
    without, which XPN.3 cannot tell apart from two names), then the same list is read."""
    traits = Traits(birth_name="MOREAU", first_names=first_names, birth_date="19620305",
                    sex=Sex.MALE)
    assert read_back(traits).first_names == first_names
