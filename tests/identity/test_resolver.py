"""
Tests for identity.matching.resolver: the hard cases the matcher must get right.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from identity.matching import MemoryCandidateIndex, Outcome, profile
from identity.model import INS, INS_NIR_TEST, IdentityStatus, Sex, Traits
from tests.identity.cast import INS_MATRICULE, MARTINS, PEOPLE, matcher, seen


@pytest.fixture(scope="module")
def m():
    return matcher()


def test_the_same_record_links(m):
    """If a known person comes back unchanged, then it links to that person."""
    for person_id, traits in PEOPLE.items():
        resolution = m.resolve(traits)
        assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, person_id), person_id


def test_another_systems_spelling_links(m):
    """If a system drops accents, glues particles and spaces compound names, then it still links."""
    other_spelling = seen("accented", birth_name="Delafontaine", first_names=("HELENE", "MARIE THERESE"))
    resolution = m.resolve(other_spelling)
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "accented")


def test_twin_never_links_to_the_other_twin(m):
    """If Lucas's twin arrives and only Lucas is known, then he is not linked to Lucas."""
    people = {k: v for k, v in {**PEOPLE, **MARTINS}.items() if k != "twin-hugo"}
    resolution = matcher(people=people).resolve(PEOPLE["twin-hugo"])
    assert resolution.outcome is not Outcome.LINKED
    assert "possible-twin" in resolution.reasons


@pytest.mark.parametrize("names", [("Luca", "Erwan"), ("Luc",), ("Lucas-Yann",), ("Jean-Lucas",)])
def test_twin_with_a_similar_first_name_never_links(m, names):
    """If a twin's first name is a misspelling away from the other's, or shares a word with
    it, then still no link."""
    people = {"twin-lucas": PEOPLE["twin-lucas"]}
    resolution = matcher(people=people).resolve(seen("twin-lucas", first_names=names))
    assert resolution.outcome is Outcome.REVIEW
    assert "possible-twin" in resolution.reasons


def test_misspelled_first_name_vouched_by_the_others_links(m):
    """If the first first name is misspelled but the further first names are the same, then
    it links: twins are not given the same further names and a near-identical first one."""
    resolution = m.resolve(seen("twin-lucas", first_names=("Lucsa", "Yann")))
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "twin-lucas")


def test_each_twin_links_to_themselves(m):
    """If both twins are known and one comes back, then it links to the right twin."""
    for person_id in ("twin-lucas", "twin-hugo"):
        resolution = m.resolve(seen(person_id, address=None, postcode=None, birth_place=None))
        assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, person_id)


def test_twin_without_first_name_is_ambiguous(m):
    """If a twin comes without a first name, then it is a review, not a guess."""
    resolution = m.resolve(seen("twin-lucas", first_names=()))
    assert resolution.outcome is Outcome.REVIEW
    assert "ambiguous" in resolution.reasons


def test_household_member_is_a_new_person(m):
    """If the son of the household arrives (same name, address, phone, his father's first
    name, another birth date), then he is not linked to his father."""
    son = seen("father", birth_date="19920817", birth_place="35238", first_names=("Jean-Pierre",))
    resolution = m.resolve(son)
    assert resolution.outcome is not Outcome.LINKED
    daughter = Traits("MOREAU", ("Claire",), "19950110", Sex.FEMALE, address="4 rue des Lilas",
                      postcode="35000")
    assert m.resolve(daughter).outcome is Outcome.NEW


@pytest.mark.parametrize("typo", ["19620503", "19260305", "19620308", "19630305"])
def test_typo_in_birth_date_links(m, typo):
    """If the birth date has one digit wrong, two digits swapped, or day and month swapped,
    then the father still links."""
    resolution = m.resolve(seen("father", birth_date=typo))
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "father")


def test_swapped_or_missing_first_names_link(m):
    """If the first names come in another order, or the first is left out, then it links."""
    for names in (("Louis", "Jean-Pierre"), ("Louis",), ("JEAN PIERRE",)):
        resolution = m.resolve(seen("father", first_names=names))
        assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "father"), names


def test_married_name_links_to_birth_name(m):
    """If a system records the married name as the birth name, then it links."""
    for traits in (seen("married", birth_name="Lefevre", used_name=None),
                   seen("married", birth_name=None, used_name="LEFEVRE"),
                   seen("mother", birth_name="MOREAU", used_name=None)):
        resolution = m.resolve(traits)
        assert resolution.outcome is Outcome.LINKED, traits


def test_common_name_stranger_is_new(m):
    """If a Jean Martin born on a date no known Jean Martin has arrives, then he is new,
    and no Martin is linked."""
    resolution = m.resolve(Traits("MARTIN", ("Jean",), "19551123", Sex.MALE, birth_place="13055"))
    assert resolution.outcome is Outcome.NEW


def test_common_name_with_all_traits_links_to_the_one(m):
    """If a known Jean Martin comes back, then he links to himself among forty."""
    resolution = m.resolve(MARTINS["martin-7"])
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "martin-7")


def test_qualified_ins_links_deterministically(m):
    """If a qualified INS held by one person arrives with agreeing traits, then it links by INS
    even when the name is misspelled."""
    resolution = m.resolve(seen("qualified", birth_name="DUBOY", birth_place=None))
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "qualified")
    assert resolution.reasons == ("qualified-ins",)


@pytest.mark.parametrize("change, reason", [
    ({"birth_date": "19790329"}, "ins-birth-date-conflict"),
    ({"birth_date": "19500101"}, "ins-birth-date-conflict"),
    ({"sex": Sex.MALE}, "ins-sex-conflict"),
    ({"birth_name": "MOREAU"}, "ins-family-name-conflict"),
])
def test_ins_with_disagreeing_traits_is_a_conflict(m, change, reason):
    """If the INS agrees but the birth date, sex or birth name does not, then review."""
    resolution = m.resolve(seen("qualified", **change))
    assert (resolution.outcome, resolution.person_id) == (Outcome.REVIEW, "qualified")
    assert reason in resolution.reasons


def test_unqualified_ins_does_not_link_by_itself(m):
    """If the INS is only provisional and the traits are another person's, then no link."""
    ins = INS(INS_MATRICULE, INS_NIR_TEST, IdentityStatus.PROVISIONAL)
    resolution = m.resolve(replace(PEOPLE["married"], ins=ins))
    assert resolution.outcome is not Outcome.LINKED or resolution.person_id == "married"
    assert m.resolve(seen("qualified", ins=ins, sex=Sex.MALE)).outcome is not Outcome.LINKED


def test_ins_held_by_two_persons_is_reviewed():
    """If two indexed persons hold the incoming qualified INS, then review."""
    index = MemoryCandidateIndex()
    index.add("a", profile(PEOPLE["qualified"]))
    index.add("b", profile(PEOPLE["qualified"]))
    from identity.matching import Matcher
    resolution = Matcher(index).resolve(PEOPLE["qualified"])
    assert resolution.outcome is Outcome.REVIEW
    assert resolution.reasons == ("ins-held-by-several",)


def test_different_sex_never_links(m):
    """If everything agrees but the sex, then review, not a link."""
    resolution = m.resolve(seen("father", sex=Sex.FEMALE))
    assert resolution.outcome is Outcome.REVIEW
    assert "sex-differs" in resolution.reasons


def test_empty_index_makes_a_new_person():
    """If nobody is known, then the identity is new."""
    resolution = matcher(people={}).resolve(PEOPLE["father"])
    assert (resolution.outcome, resolution.person_id, resolution.candidates) == (Outcome.NEW, None, ())


def test_family_and_first_names_written_the_other_way_round_link(m):
    """If a system wrote the first name as family name and back, then it still links."""
    resolution = m.resolve(seen("married", birth_name="Anne", first_names=("Garnier",), used_name=None))
    assert (resolution.outcome, resolution.person_id) == (Outcome.LINKED, "married")



def test_a_date_typo_with_another_address_and_phone_is_reviewed(m):
    """If the birth date is a digit away and address and phone differ too, then it may be a
    namesake born a day apart as well as the person moved: review, not a link."""
    resolution = m.resolve(seen("father", birth_date="19620306", address="3 rue Pasteur", postcode="13001",
                                phone="0699999999"))
    assert (resolution.outcome, resolution.person_id) == (Outcome.REVIEW, "father")
    assert "approximate-trait-contradicted" in resolution.reasons
    assert m.resolve(seen("father", birth_date="19620306")).outcome is Outcome.LINKED


def test_a_test_ins_does_not_vouch_for_a_production_one(m):
    """If the incoming INS has the holder's matricule but the production OID while the holder's
    is the test OID, then review."""
    from identity.model import INS_NIR
    production = INS(INS_MATRICULE, INS_NIR, IdentityStatus.QUALIFIED)
    resolution = m.resolve(seen("qualified", ins=production))
    assert (resolution.outcome, resolution.reasons) == (Outcome.REVIEW, ("ins-domain-differs",))
