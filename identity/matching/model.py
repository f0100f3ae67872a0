"""
The Fellegi–Sunter match model: m and u probabilities per field level and the
thresholds of the three bands.

For each field level, m is its probability among pairs of records of one
person, u among pairs of different persons; the level's weight is
``log2(m / u)`` and a pair's score is the sum of the weights of its fields
(missing fields add nothing). Scores at or above ``upper`` link, below
``lower`` make a new person, and between go to review. ``margin`` is how far
ahead of the next candidate the best must be to link alone.

A territory overrides any part through :meth:`MatchModel.from_mapping` (the
shape of its YAML) or estimates m, u from its data with :mod:`identity.matching.em`.
The defaults are set so that a link needs the name, first name and birth date
to agree, or nearly so, and the hard rules (:mod:`identity.matching.rules`)
forbid an automatic link whenever a strict trait disagrees outright.

test-case-name: tests.identity.test_scoring
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from identity.matching.compare import FIELDS, LEVELS

Probabilities = Mapping[str, tuple[float, ...]]

DEFAULT_M: dict[str, tuple[float, ...]] = {
    "family": (0.90, 0.05, 0.04, 0.01),
    "first": (0.88, 0.05, 0.04, 0.01, 0.02),
    "birth_date": (0.95, 0.04, 0.01),
    "sex": (0.98, 0.02),
    "birth_place": (0.95, 0.05),
    "address": (0.70, 0.15, 0.15),
    "phone": (0.70, 0.30),
    "ins": (0.99, 0.01),
}
DEFAULT_U: dict[str, tuple[float, ...]] = {
    "family": (0.002, 0.0005, 0.01, 0.9875),
    "first": (0.01, 0.01, 0.002, 0.005, 0.973),
    "birth_date": (0.00003, 0.0006, 0.99937),
    "sex": (0.5, 0.5),
    "birth_place": (0.01, 0.99),
    "address": (0.0005, 0.01, 0.9895),
    "phone": (0.0001, 0.9999),
    "ins": (0.000001, 0.999999),
}

_THRESHOLDS = ("upper", "lower", "margin", "frequency_floor", "frequency_prior")

FREQUENCY_FIELDS = ("family", "first", "birth_place")
"""Fields whose exact agreement is weighed by how common the agreeing value is."""


class InvalidModel(ValueError):
    """A model whose probabilities or thresholds cannot be used; the message names which."""


def _check(name: str, field_name: str, values: tuple[float, ...]) -> None:
    if len(values) != len(LEVELS[field_name]):
        raise InvalidModel(f"{name}[{field_name}]: {len(values)} values for levels {LEVELS[field_name]}")
    if any(not 0.0 < v < 1.0 for v in values):
        raise InvalidModel(f"{name}[{field_name}]: every probability must be in (0, 1), got {values}")


@dataclass(frozen=True)
class MatchModel:
    """m and u per field level, and the thresholds (in bits) of the three bands."""

    m: Probabilities = field(default_factory=lambda: dict(DEFAULT_M))
    u: Probabilities = field(default_factory=lambda: dict(DEFAULT_U))
    upper: float = 18.0
    lower: float = 12.0
    margin: float = 6.0
    frequency_floor: float = 0.0001
    frequency_prior: float = 1000.0

    def __post_init__(self) -> None:
        for name, table in (("m", self.m), ("u", self.u)):
            if set(table) != set(FIELDS):
                raise InvalidModel(f"{name}: fields {sorted(table)} differ from {sorted(FIELDS)}")
            for field_name, values in table.items():
                _check(name, field_name, tuple(values))
        if self.lower > self.upper:
            raise InvalidModel(f"thresholds: lower {self.lower} above upper {self.upper}")

    def weights(self) -> tuple[tuple[float, ...], ...]:
        """log2(m/u) per field (in FIELDS order) and level."""
        return tuple(tuple(math.log2(m / u) for m, u in zip(self.m[f], self.u[f])) for f in FIELDS)

    def exact_weight(self, field_name: str, count: int, total: int) -> float:
        """The weight of exact agreement on a value that ``count`` of ``total`` persons have.

        Two strangers share ``MARTIN`` far more often than ``KERGUELEN``: the u
        of an exact agreement is the agreeing value's frequency. The frequency
        is shrunk toward the default u by ``frequency_prior`` imaginary persons,
        so that a small index (or a name seen once) does not make wild weights,
        and floored so that one rare name cannot outweigh everything else.
        """
        prior = self.u[field_name][0]
        frequency = (count + prior * self.frequency_prior) / (total + self.frequency_prior)
        return math.log2(self.m[field_name][0] / max(frequency, self.frequency_floor))

    def to_mapping(self) -> dict:
        """The model as plain data, the shape :meth:`from_mapping` reads."""
        return {
            "upper": self.upper, "lower": self.lower, "margin": self.margin,
            "frequency_floor": self.frequency_floor, "frequency_prior": self.frequency_prior,
            "fields": {f: {"m": dict(zip(LEVELS[f], self.m[f])), "u": dict(zip(LEVELS[f], self.u[f]))}
                       for f in FIELDS},
        }

    @classmethod
    def from_mapping(cls, data: Mapping, base: MatchModel | None = None) -> MatchModel:
        """A model from a territory's settings; what they leave out comes from ``base``."""
        base = base or cls()
        m, u = dict(base.m), dict(base.u)
        unknown = set(data) - {*_THRESHOLDS, "fields"}
        if unknown:
            raise InvalidModel(f"model settings: unknown keys {sorted(unknown)}")
        for field_name, tables in (data.get("fields") or {}).items():
            if field_name not in LEVELS:
                raise InvalidModel(f"model settings: unknown field {field_name!r}")
            m[field_name] = _levels(field_name, "m", tables.get("m"), m[field_name])
            u[field_name] = _levels(field_name, "u", tables.get("u"), u[field_name])
        thresholds = {k: float(data[k]) for k in _THRESHOLDS if k in data}
        return replace(base, m=m, u=u, **thresholds)


def _levels(field_name: str, name: str, given: Mapping | None,
            current: tuple[float, ...]) -> tuple[float, ...]:
    """Level probabilities by level name, the current value where one is not given."""
    if not given:
        return current
    unknown = set(given) - set(LEVELS[field_name])
    if unknown:
        raise InvalidModel(f"model settings: {field_name}.{name} has unknown levels {sorted(unknown)}")
    return tuple(float(given.get(level, value)) for level, value in zip(LEVELS[field_name], current))
