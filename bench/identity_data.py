"""
Synthetic French identities with ground truth, for bench/identity_quality.py.

A seeded, deterministic world of households (couples where the wife often uses
her husband's name, children, twins), birth places as INSEE codes, addresses,
phones and NIRs with valid keys. Each person has a *master* record, the one the
index holds, and the bench draws *queries*: identities as another system of the
territory would send them (its own identifier domain, its own spelling habits:
accents dropped, capitals, hyphens as spaces, glued particles), each of one
hard-case class with the person it really is, or None for a newcomer.

Nothing here reads the matcher's code: the world is made from the outside, as
the territory's systems would make it.
"""
from __future__ import annotations

import datetime
import itertools
import random
from dataclasses import dataclass, field, replace

from identity_names import CITIES, COMMON_FAMILY, FEMALE_FIRST, MALE_FIRST, RARE_PARTS, STREETS

from identity.model import INS, INS_NIR, IdentifierDomain, IdentityStatus, Sex, Traits, nir_key

SYSTEMS = tuple(IdentifierDomain(f"1.2.250.1.999.1.{n}", name) for n, name in enumerate(
    ("CHU-NORD", "CH-SUD", "CLINIQUE-EST", "LABO-OUEST", "CABINET-CENTRE"), start=1))
"""The territory's source systems, each numbering patients in its own (made-up) domain."""


def zipf_weights(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights over ranks 1..n, for random.choices(cum_weights=…)."""
    return list(itertools.accumulate(1.0 / (rank ** s) for rank in range(1, n + 1)))


@dataclass
class Person:
    """One real person of the synthetic territory (the ground truth)."""

    pid: str
    birth_name: str
    first_names: tuple[str, ...]
    birth_date: str
    sex: Sex
    birth_place: str
    street: str
    postcode: str
    phone: str
    nir: str
    household: int
    used_name: str | None = None
    twin_of: str | None = None
    members: list[str] = field(default_factory=list)


class Names:
    """Draws names with French-like frequencies: a few very common, a long rare tail."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._family = zipf_weights(len(COMMON_FAMILY), 0.5)
        self._male = zipf_weights(len(MALE_FIRST), 0.5)
        self._female = zipf_weights(len(FEMALE_FIRST), 0.5)
        self._cities = zipf_weights(len(CITIES), 1.0)

    def family(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choices(COMMON_FAMILY, cum_weights=self._family)[0]
        first, middle, last = RARE_PARTS
        middles = [self.rng.choice(middle) for _ in range(self.rng.choice((1, 1, 2)))]
        return self.rng.choice(first) + "".join(middles) + self.rng.choice(last)

    def first_names(self, sex: Sex) -> tuple[str, ...]:
        names, weights = (MALE_FIRST, self._male) if sex is Sex.MALE else (FEMALE_FIRST, self._female)
        count = self.rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        chosen: list[str] = []
        while len(chosen) < count:
            name = self.rng.choices(names, cum_weights=weights)[0]
            if name not in chosen:
                chosen.append(name)
        return tuple(chosen)

    def place(self) -> str:
        if self.rng.random() < 0.6:
            return self.rng.choices(CITIES, cum_weights=self._cities)[0]
        department = self.rng.choice([f"{d:02d}" for d in range(1, 96) if d != 20])
        return f"{department}{self.rng.randint(1, 400):03d}"


def make_nir(sex: Sex, birth_date: str, place: str, rng: random.Random) -> str:
    """A NIR consistent with sex, birth year and month and place, with a valid key."""
    body = f"{1 if sex is Sex.MALE else 2}{birth_date[2:4]}{birth_date[4:6]}{place}{rng.randint(1, 999):03d}"
    return f"{body}{nir_key(body):02d}"


def random_date(rng: random.Random, first_year: int, last_year: int) -> str:
    start = datetime.date(first_year, 1, 1).toordinal()
    end = datetime.date(last_year, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(start, end)).strftime("%Y%m%d")


class World:
    """The population, which persons the index holds, and the pools of hard cases."""

    def __init__(self, persons: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.names = Names(self.rng)
        self.people: dict[str, Person] = {}
        self.households: list[list[str]] = []
        while len(self.people) < persons * 1.08:
            self._household()
        self._split()

    def _new(self, household: int, family: str, sex: Sex, birth_date: str, place: str,
             home: tuple[str, str, str], **extra) -> Person:
        pid = f"P{len(self.people) + 1:07d}"
        mobile = f"06{self.rng.randint(0, 99999999):08d}"
        phone = home[2] if self.rng.random() < 0.4 else mobile
        person = Person(pid, family, self.names.first_names(sex), birth_date, sex, place, home[0],
                        home[1], phone, make_nir(sex, birth_date, place, self.rng), household, **extra)
        self.people[pid] = person
        self.households[household].append(pid)
        return person

    def _household(self) -> None:
        rng, number = self.rng, len(self.households)
        self.households.append([])
        home = (f"{rng.randint(1, 180)} {rng.choice(STREETS)}", f"{rng.randint(1000, 95999):05d}",
                f"0{rng.randint(1, 5)}{rng.randint(0, 99999999):08d}")
        family, kind = self.names.family(), rng.random()
        first = self._new(number, family, rng.choice((Sex.MALE, Sex.FEMALE)),
                          random_date(rng, 1930, 2000), self.names.place(), home)
        if kind < 0.35:
            return
        if kind < 0.90:
            wife_used = family if rng.random() < 0.7 else None
            first.sex = Sex.MALE
            first.first_names = self.names.first_names(Sex.MALE)
            first.nir = make_nir(Sex.MALE, first.birth_date, first.birth_place, rng)
            year = int(first.birth_date[:4]) + rng.randint(-6, 6)
            self._new(number, self.names.family(), Sex.FEMALE, random_date(rng, year, year),
                      self.names.place(), home, used_name=wife_used)
        if kind >= 0.65:
            self._children(number, first, home)

    def _children(self, number: int, parent: Person, home: tuple[str, str, str]) -> None:
        rng = self.rng
        base = int(parent.birth_date[:4])
        for _ in range(rng.randint(1, 3)):
            year = min(base + rng.randint(20, 40), 2024)
            date, place = random_date(rng, year, year), rng.choice((parent.birth_place, self.names.place()))
            sex = rng.choice((Sex.MALE, Sex.FEMALE))
            child = self._new(number, parent.birth_name, sex, date, place, home)
            if rng.random() < 0.04:
                twin = self._new(number, parent.birth_name, rng.choice((Sex.MALE, child.sex)), date, place,
                                 home, twin_of=child.pid)
                while set(twin.first_names) & set(child.first_names):
                    twin.first_names = self.names.first_names(twin.sex)
                child.twin_of = twin.pid

    def _split(self) -> None:
        """Hold some persons out of the index: they come back as newcomers."""
        rng = self.rng
        self.held_out: dict[str, str] = {}
        for members in self.households:
            twins = [pid for pid in members if self.people[pid].twin_of]
            if twins and rng.random() < 0.5:
                self.held_out[twins[0]] = "twin"
            elif len(members) > 1 and rng.random() < 0.1:
                self.held_out[rng.choice(members)] = "household"
            elif rng.random() < 0.03:
                self.held_out[rng.choice(members)] = "stranger"
        self.indexed = [pid for pid in self.people if pid not in self.held_out]
        with_ins = [pid for pid in self.indexed if rng.random() < 0.4]
        self.master_ins = set(with_ins)

    def master(self, pid: str) -> Traits:
        """The record of ``pid`` the index holds: full traits, an INS for some."""
        p = self.people[pid]
        ins = None
        if pid in self.master_ins:
            status = self.rng.choices(list(IdentityStatus), weights=(10, 10, 20, 60))[0]
            ins = INS(p.nir, INS_NIR, status)
        return Traits(birth_name=p.birth_name, first_names=p.first_names, birth_date=p.birth_date,
                      sex=p.sex, used_name=p.used_name, birth_place=p.birth_place, address=p.street,
                      postcode=p.postcode, phone=p.phone, ins=ins)


@dataclass(frozen=True)
class Query:
    """An identity as a source system sends it, and who it really is (None: a newcomer)."""

    kind: str
    traits: Traits
    expected: str | None
    system: IdentifierDomain = SYSTEMS[0]


def restyle(traits: Traits, rng: random.Random) -> Traits:
    """The same traits in another system's spelling habits."""
    strip = rng.random() < 0.7
    hyphen = rng.random() < 0.3
    glue = rng.random() < 0.2
    upper = rng.random() < 0.8

    def spell(name: str | None) -> str | None:
        if name is None:
            return None
        if strip:
            name = name.translate(_PLAIN)
        if hyphen:
            name = name.replace("-", " ")
        if glue:
            name = name.replace(" ", "").replace("'", "")
        return name.upper() if upper else name.title()

    return replace(traits, birth_name=spell(traits.birth_name), used_name=spell(traits.used_name),
                   first_names=tuple(spell(n) for n in traits.first_names))


_PLAIN = str.maketrans("ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ", "AAACEEEEIIOOUUUY")


def name_typo(name: str, rng: random.Random) -> str:
    """One keying or hearing mistake: a letter changed, lost, added, doubled,
    two letters swapped, or a homophone spelling (DUPONT/DUPOND, AU/O, PH/F)."""
    homophones = [("T", "D"), ("AU", "O"), ("PH", "F"), ("EAU", "O"), ("Y", "I"), ("LL", "L"), ("SS", "S")]
    found = [(a, b) for a, b in homophones if a in name]
    kind = rng.choice(("sub", "del", "ins", "swap", "double", "homophone"))
    if kind == "homophone" and found:
        a, b = rng.choice(found)
        return name.replace(a, b, 1)
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    i = rng.choice(letters[1:] or letters)
    letter = rng.choice("ABCDEFGHIJLMNOPRSTUV")
    if kind == "del" and len(letters) > 3:
        return name[:i] + name[i + 1:]
    if kind == "ins":
        return name[:i] + letter + name[i:]
    if kind == "swap" and i + 1 < len(name) and name[i + 1].isalpha():
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if kind == "double":
        return name[:i] + name[i] + name[i:]
    return name[:i] + (letter if letter != name[i] else "K") + name[i + 1:]


def _valid(date: str) -> bool:
    try:
        datetime.datetime.strptime(date, "%Y%m%d")
    except ValueError:
        return False
    return "1900" <= date[:4] <= "2025"


def date_typo(date: str, rng: random.Random) -> str:
    """One mistake on a birth date: a digit changed, two adjacent digits
    swapped, or day and month swapped; always a valid, different date."""
    for _ in range(100):
        kind = rng.choice(("digit", "digit", "swap", "daymonth"))
        if kind == "daymonth":
            typo = date[:4] + date[6:8] + date[4:6]
        elif kind == "swap":
            i = rng.randint(2, 6)
            typo = date[:i] + date[i + 1] + date[i] + date[i + 2:]
        else:
            i = rng.choice((3, 5, 6, 7))
            typo = date[:i] + str(rng.randint(0, 9)) + date[i + 1:]
        if typo != date and _valid(typo):
            return typo
    return date


class QueryMaker:
    """Draws queries of each hard-case class from a :class:`World`."""

    KINDS = {
        "revisit": 0.26, "name-typo": 0.08, "date-typo": 0.08, "first-names": 0.08,
        "married-name": 0.07, "ins-qualified": 0.07, "twin-revisit": 0.06, "moved": 0.05,
        "twin-new": 0.05, "household-new": 0.06, "homonym-new": 0.06, "stranger-new": 0.05,
        "ins-conflict": 0.03,
    }
    """Class → share of the queries. Classes ending in -new are persons not in the index."""

    SECOND_MISTAKE = 0.2
    """Share of the records that carry one more random mistake besides their class's."""

    def __init__(self, world: World, seed: int = 2) -> None:
        self.world, self.rng = world, random.Random(seed)
        people, indexed = world.people, set(world.indexed)
        self.pools = {
            "twin-revisit": [p for p in world.indexed if people[p].twin_of in indexed],
            "twin-new": [p for p, why in world.held_out.items() if why == "twin"],
            "household-new": [p for p, why in world.held_out.items() if why == "household"],
            "stranger-new": [p for p, why in world.held_out.items() if why == "stranger"],
            "married-name": [p for p in world.indexed if people[p].used_name],
            "common": [p for p in world.indexed if people[p].birth_name in _COMMON],
        }

    def queries(self, count: int) -> list[Query]:
        kinds = list(self.KINDS)
        drawn = self.rng.choices(kinds, weights=[self.KINDS[k] for k in kinds], k=count)
        return [self.make(kind) for kind in drawn]

    def _observed(self, pid: str, **changes) -> Traits:
        """A record of ``pid`` as another system has it: its spelling, gaps in optional fields."""
        p, rng = self.world.people[pid], self.rng
        traits = Traits(
            birth_name=p.birth_name, first_names=p.first_names, birth_date=p.birth_date, sex=p.sex,
            used_name=p.used_name if rng.random() < 0.8 else None,
            birth_place=p.birth_place if rng.random() < 0.6 else None,
            address=p.street if rng.random() < 0.7 else None,
            postcode=p.postcode if rng.random() < 0.7 else None,
            phone=p.phone if rng.random() < 0.5 else None)
        traits = replace(traits, **changes)
        if rng.random() < self.SECOND_MISTAKE:
            traits = self._second_mistake(traits)
        return restyle(traits, rng)

    def _second_mistake(self, traits: Traits) -> Traits:
        """One more slip on top of the class's own: real records carry several."""
        rng = self.rng
        kind = rng.choice(("family", "first", "date", "first-names", "sex"))
        if kind == "family" and traits.birth_name:
            return replace(traits, birth_name=name_typo(traits.birth_name, rng))
        if kind == "first" and traits.first_names:
            misspelled = name_typo(traits.first_names[0], rng)
            return replace(traits, first_names=(misspelled,) + traits.first_names[1:])
        if kind == "date" and traits.birth_date:
            return replace(traits, birth_date=date_typo(traits.birth_date, rng))
        if kind == "first-names":
            return replace(traits, first_names=traits.first_names[:1])
        return replace(traits, sex=Sex.UNKNOWN)

    def make(self, kind: str) -> Query:
        """One query of class ``kind``."""
        rng, people = self.rng, self.world.people
        system = rng.choice(SYSTEMS)
        pool = self.pools.get(kind) or self.world.indexed
        pid = rng.choice(pool)
        p = people[pid]
        expected = None if kind.endswith("-new") else pid
        if kind == "name-typo":
            traits = self._observed(pid, birth_name=name_typo(p.birth_name, rng))
        elif kind == "date-typo":
            traits = self._observed(pid, birth_date=date_typo(p.birth_date, rng))
        elif kind == "first-names":
            names = p.first_names
            changed = (names[1], names[0]) + names[2:] if len(names) > 1 and rng.random() < 0.5 \
                else names[1:]
            traits = self._observed(pid, first_names=changed)
        elif kind == "married-name":
            traits = self._observed(pid, birth_name=p.used_name, used_name=None)
        elif kind == "moved":
            traits = self._observed(pid, address=f"{rng.randint(1, 99)} {rng.choice(STREETS)}",
                                    postcode=f"{rng.randint(1000, 95999):05d}", phone=None)
        elif kind in ("ins-qualified", "ins-conflict"):
            traits = self._with_ins(pid, conflict=kind == "ins-conflict")
            expected = None if kind == "ins-conflict" else pid
        elif kind == "homonym-new":
            traits = self._homonym(rng.choice(self.pools["common"]))
        else:
            traits = self._observed(pid)
        return Query(kind, traits, expected, system)

    def _with_ins(self, pid: str, conflict: bool) -> Traits:
        """A qualified INS; for a conflict, the traits of that INS's holder but
        another birth date or sex (the INS attached to the wrong record)."""
        p = self.world.people[pid]
        ins = INS(p.nir, INS_NIR, IdentityStatus.QUALIFIED)
        traits = self._observed(pid, ins=ins)
        if not conflict:
            return traits
        if self.rng.random() < 0.5:
            return replace(traits, birth_date=random_date(self.rng, 1930, 2020))
        return replace(traits, sex=Sex.FEMALE if p.sex is Sex.MALE else Sex.MALE)

    def _homonym(self, pid: str) -> Traits:
        """A stranger with the name and first names of ``pid``, everything else their own."""
        p, rng = self.world.people[pid], self.rng
        return restyle(Traits(
            birth_name=p.birth_name, first_names=p.first_names[:1], sex=p.sex,
            birth_date=random_date(rng, 1930, 2020), birth_place=self.world.names.place(),
            address=f"{rng.randint(1, 99)} {rng.choice(STREETS)}",
            postcode=f"{rng.randint(1000, 95999):05d}"), rng)


_COMMON = frozenset(COMMON_FAMILY[:40])
