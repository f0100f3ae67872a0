"""
The people of the identity tests: a small territory with the hard cases in it.

Twins (Lucas and Hugo Kerbrat), a household (the Moreaus: a husband, a wife
who uses his name, a son named after his father), a woman known by her
married name (Anne Lefèvre, née Garnier), many strangers called Martin, and
a patient with a qualified INS.
"""
from __future__ import annotations

from dataclasses import replace

from identity.matching import Matcher, MatchModel, MemoryCandidateIndex, profile
from identity.model import INS, INS_NIR_TEST, IdentityStatus, Sex, Traits

HOME = dict(address="12 rue Victor Hugo", postcode="29200")
INS_MATRICULE = "279035121518989"

PEOPLE = {
    "twin-lucas": Traits("KERBRAT", ("Lucas", "Yann"), "20100614", Sex.MALE, birth_place="29019", **HOME),
    "twin-hugo": Traits("KERBRAT", ("Hugo", "Yann"), "20100614", Sex.MALE, birth_place="29019", **HOME),
    "father": Traits("MOREAU", ("Jean-Pierre", "Louis"), "19620305", Sex.MALE, birth_place="75056",
                     address="4 rue des Lilas", postcode="35000", phone="0612345678"),
    "mother": Traits("ROUSSEL", ("Isabelle",), "19640921", Sex.FEMALE, used_name="MOREAU",
                     birth_place="35238", address="4 rue des Lilas", postcode="35000"),
    "married": Traits("GARNIER", ("Anne", "Sophie"), "19750203", Sex.FEMALE, used_name="LEFÈVRE",
                      birth_place="69123"),
    "qualified": Traits("DUBOIS", ("Dominique",), "19790328", Sex.FEMALE, birth_place="63220",
                        ins=INS(INS_MATRICULE, INS_NIR_TEST, IdentityStatus.QUALIFIED)),
    "accented": Traits("DE LA FONTAINE", ("Hélène", "Marie-Thérèse"), "19481130", Sex.FEMALE,
                       birth_place="2A004"),
}
MARTINS = {f"martin-{n}": Traits("MARTIN", ("Jean",), f"19{40 + n}0{1 + n % 9}1{n % 9}", Sex.MALE)
           for n in range(40)}


def matcher(model: MatchModel | None = None, people: dict | None = None) -> Matcher:
    """A matcher over an in-memory index of PEOPLE and MARTINS (or ``people``)."""
    index = MemoryCandidateIndex()
    for person_id, traits in ({**PEOPLE, **MARTINS} if people is None else people).items():
        index.add(person_id, profile(traits))
    return Matcher(index, model)


def seen(person_id: str, **changes) -> Traits:
    """A person of PEOPLE as another system records them, with ``changes``."""
    return replace(PEOPLE[person_id], **changes)
