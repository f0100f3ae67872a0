"""
Blocking keys: which indexed persons are worth comparing with an identity.

Comparing an incoming identity with all 100 000 persons of a territory would
cost too much; comparing it only with persons who share some cheap key risks
missing the right one when that key holds a typo. Several keys, each robust to
a different mistake, are used together and their candidates united:

* family name key + birth date: first-name changes, swaps, omissions;
* first name key + birth date: married and used names, a new family name;
* family name key + first name key: typos and transpositions in the date;
* family name key + birth year, and + birth month and day: a first name and
  one part of the date both mistyped;
* birth date + birth place + sex: a name changed *and* misspelled;
* at query time, the keys of the names written the other way round.

Family name keys come from both the birth and the used name, so a married
name written as a birth name still meets its person.

test-case-name: tests.identity.test_blocking
"""
from __future__ import annotations

from identity.matching.profile import Profile


def blocking_keys(p: Profile) -> tuple[str, ...]:
    """The blocking keys of a profile, the same function for indexing and querying."""
    keys: list[str] = []
    first = p.first_keys[0] if p.first_keys else None
    for family in p.family_keys:
        if p.birth_date:
            keys.append(f"nd:{family}:{p.birth_date}")
            keys.append(f"ny:{family}:{p.birth_date[:4]}")
            keys.append(f"nm:{family}:{p.birth_date[4:]}")
        if first:
            keys.append(f"nf:{family}:{first}")
    if first and p.birth_date:
        keys.append(f"fd:{first}:{p.birth_date}")
    if p.birth_date and p.birth_place and p.sex:
        keys.append(f"dps:{p.birth_date}:{p.birth_place}:{p.sex}")
    return tuple(keys)


def inverted_keys(p: Profile) -> tuple[str, ...]:
    """Keys under which ``p`` meets its person if its family and first names were
    written the other way round. Asked at query time only: indexing both ways
    would double the index for a slip that one side's keys already cover."""
    if not (p.first_keys and p.family_keys and p.birth_date):
        return ()
    family, first = p.first_keys[0], p.family_keys[0]
    return (f"nd:{family}:{p.birth_date}", f"fd:{first}:{p.birth_date}", f"nf:{family}:{first}")
