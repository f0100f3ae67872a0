"""
The one decision: which person an incoming identity is, if any.

:meth:`Matcher.resolve` answers with a :class:`Resolution` in one of three
outcomes: linked to a person, sent to review (with the candidates a reviewer
should see), or new. In order:

1. An incoming *qualified* INS held by one indexed person links to it
   deterministically, unless strict traits disagree (then review: a wrong INS
   or wrong traits, either way a human looks) or the two INS come from
   different domains (a test INS never vouches for a production one). Held by
   several: review.
2. Otherwise the candidates sharing a blocking key are scored
   (Fellegi–Sunter, :mod:`identity.matching.model`) and the best falls in a
   band; a link also needs no veto (:mod:`identity.matching.rules`) and a
   lead of ``margin`` bits over every other candidate that could be linked
   (one without a veto), or it becomes a review.

Pure: no I/O beyond the :class:`CandidateIndex` it is given.

test-case-name: tests.identity.test_resolver
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from identity.matching.blocking import blocking_keys, inverted_keys
from identity.matching.compare import FIELDS, Vector, compare
from identity.matching.index import CandidateIndex, IndexedPerson
from identity.matching.model import FREQUENCY_FIELDS, MatchModel
from identity.matching.profile import Profile, profile
from identity.matching.rules import ins_conflicts, vetoes
from identity.model import Traits

SHOWN_CANDIDATES = 5


class Outcome(enum.Enum):
    """What the index should do with an incoming identity."""

    LINKED = "linked"
    REVIEW = "review"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """One indexed person compared with the incoming identity."""

    person_id: str
    score: float
    vector: Vector


@dataclass(frozen=True, slots=True)
class Resolution:
    """The decision, the person it names (linked, or proposed for review), and why."""

    outcome: Outcome
    person_id: str | None
    score: float | None
    reasons: tuple[str, ...]
    candidates: tuple[ScoredCandidate, ...]


class Matcher:
    """Resolves identities against one index with one model."""

    def __init__(self, index: CandidateIndex, model: MatchModel | None = None) -> None:
        self.index = index
        self.model = model or MatchModel()
        self._weights = self.model.weights()
        self._exact = {name: FIELDS.index(name) for name in FREQUENCY_FIELDS}

    def resolve(self, incoming: Traits | Profile) -> Resolution:
        """Decide which person ``incoming`` is (see the module docstring)."""
        p = incoming if isinstance(incoming, Profile) else profile(incoming)
        if p.ins is not None and p.ins.qualified:
            holders = self.index.by_ins(p.ins.matricule)
            if holders:
                return self._by_ins(p, holders)
        scored = self.score_all(p, self.index.candidates(blocking_keys(p) + inverted_keys(p)))
        return self._decide(scored)

    def score_all(self, p: Profile, persons: Sequence[IndexedPerson]) -> list[ScoredCandidate]:
        """Compare and score each person with ``p``, best first."""
        weights = self._weights_for(p)
        scored = []
        for person in persons:
            vector = compare(p, person.profile)
            total = sum(weights[i][level] for i, level in enumerate(vector) if level is not None)
            scored.append(ScoredCandidate(person.person_id, total, vector))
        scored.sort(key=lambda c: c.score, reverse=True)
        return scored

    def _weights_for(self, p: Profile) -> list[tuple[float, ...]]:
        """The model's weights with exact agreement weighed by how common p's names are."""
        weights = list(self._weights)
        total = self.index.person_count()
        for name, value in (("family", p.family), ("first", p.first), ("birth_place", p.birth_place)):
            if value:
                exact = self.model.exact_weight(name, self.index.name_count(name, value), total)
                weights[self._exact[name]] = (exact,) + weights[self._exact[name]][1:]
        return weights

    def _by_ins(self, p: Profile, holders: Sequence[IndexedPerson]) -> Resolution:
        scored = self.score_all(p, holders)
        best = scored[0]
        shown = tuple(scored[:SHOWN_CANDIDATES])
        if len(scored) > 1:
            return Resolution(Outcome.REVIEW, best.person_id, best.score, ("ins-held-by-several",), shown)
        conflicts = ins_conflicts(best.vector)
        held = holders[0].profile.ins
        if held is not None and held.domain != p.ins.domain:
            conflicts += ("ins-domain-differs",)
        if conflicts:
            return Resolution(Outcome.REVIEW, best.person_id, best.score, conflicts, shown)
        return Resolution(Outcome.LINKED, best.person_id, best.score, ("qualified-ins",), shown)

    def _decide(self, scored: list[ScoredCandidate]) -> Resolution:
        shown = tuple(scored[:SHOWN_CANDIDATES])
        if not scored or scored[0].score < self.model.lower:
            best_score = scored[0].score if scored else None
            return Resolution(Outcome.NEW, None, best_score, ("below-lower-threshold",), shown)
        best = scored[0]
        reasons = list(vetoes(best.vector))
        if any(c.score >= self.model.lower and best.score - c.score < self.model.margin
               and not vetoes(c.vector) for c in scored[1:]):
            reasons.append("ambiguous")
        if best.score < self.model.upper:
            reasons.insert(0, "between-thresholds")
        if reasons:
            return Resolution(Outcome.REVIEW, best.person_id, best.score, tuple(reasons), shown)
        return Resolution(Outcome.LINKED, best.person_id, best.score, ("above-upper-threshold",), shown)
