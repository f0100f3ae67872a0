"""
Tests for identity.matching.em: EM recovers m, u and the prevalence it was given.
"""
from __future__ import annotations

import random

import pytest

from identity.matching import MatchModel
from identity.matching.compare import FIELDS, LEVELS
from identity.matching.em import estimate

TRUE_M = {
    "family": (0.85, 0.06, 0.06, 0.03), "first": (0.80, 0.07, 0.06, 0.03, 0.04),
    "birth_date": (0.90, 0.07, 0.03), "sex": (0.97, 0.03), "birth_place": (0.92, 0.08),
    "address": (0.60, 0.20, 0.20), "phone": (0.60, 0.40), "ins": (0.95, 0.05),
}
TRUE_U = {
    "family": (0.30, 0.05, 0.15, 0.50), "first": (0.08, 0.07, 0.03, 0.12, 0.70),
    "birth_date": (0.10, 0.15, 0.75), "sex": (0.50, 0.50), "birth_place": (0.10, 0.90),
    "address": (0.05, 0.10, 0.85), "phone": (0.02, 0.98), "ins": (0.01, 0.99),
}
MISSING = {"family": 0.0, "first": 0.05, "birth_date": 0.02, "sex": 0.05, "birth_place": 0.4,
           "address": 0.3, "phone": 0.5, "ins": 0.6}


def generate(count: int, prevalence: float, seed: int) -> list[tuple]:
    """Comparison vectors drawn from TRUE_M / TRUE_U, with fields missing at MISSING rates."""
    rng = random.Random(seed)
    vectors = []
    for _ in range(count):
        table = TRUE_M if rng.random() < prevalence else TRUE_U
        vectors.append(tuple(
            None if rng.random() < MISSING[f] else rng.choices(range(len(LEVELS[f])), weights=table[f])[0]
            for f in FIELDS))
    return vectors


def test_em_recovers_known_parameters():
    """If vectors are drawn from known m, u and prevalence, then EM, started from the
    defaults, finds them back within sampling error."""
    result = estimate(generate(30000, 0.3, seed=7))
    assert result.converged
    assert result.prevalence == pytest.approx(0.3, abs=0.02)
    for f in FIELDS:
        assert result.model.m[f] == pytest.approx(TRUE_M[f], abs=0.03), f
        assert result.model.u[f] == pytest.approx(TRUE_U[f], abs=0.03), f


def test_em_keeps_the_thresholds_and_can_fix_u():
    """If EM fits a model, then the thresholds stay the territory's; with u fixed, only m
    and the prevalence move."""
    start = MatchModel(upper=25.0, lower=5.0)
    result = estimate(generate(5000, 0.3, seed=8), start=start)
    assert (result.model.upper, result.model.lower) == (25.0, 5.0)
    fixed = estimate(generate(20000, 0.3, seed=9), start=MatchModel(u=TRUE_U), fixed_u=True)
    assert fixed.model.u == MatchModel(u=TRUE_U).u
    assert fixed.model.m["birth_date"] == pytest.approx(TRUE_M["birth_date"], abs=0.03)


def test_em_needs_vectors():
    """If there is nothing to learn from, then EM says so."""
    with pytest.raises(ValueError, match="no comparison vectors"):
        estimate([])
