"""
Estimating m, u and the match prevalence from unlabelled comparison vectors (EM).

A territory rarely has labelled pairs, but it has many candidate pairs: the
comparison vectors of blocked pairs are a mixture of matches and non-matches,
and under the Fellegi–Sunter assumption (fields independent given the class)
expectation-maximisation recovers both sides' level probabilities. Missing
fields (None) are left out of a pair's likelihood and of that field's counts.

Identical vectors are counted once with their multiplicity, so the cost of an
iteration is the number of distinct vectors, not of pairs.

test-case-name: tests.identity.test_em
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from identity.matching.compare import FIELDS, LEVELS, Vector
from identity.matching.model import MatchModel

SMOOTHING = 1e-6
"""Added to every level count so no probability reaches 0 (its weight would be infinite)."""


@dataclass(frozen=True)
class Estimate:
    """The fitted model, the share of matches among the pairs, and how the fit went."""

    model: MatchModel
    prevalence: float
    iterations: int
    converged: bool


def _posterior(vector: Vector, prevalence: float, m: list, u: list) -> float:
    """P(match | vector) under the current parameters, in log space for stability."""
    log_m, log_u = math.log(prevalence), math.log(1.0 - prevalence)
    for i, level in enumerate(vector):
        if level is not None:
            log_m += math.log(m[i][level])
            log_u += math.log(u[i][level])
    top = max(log_m, log_u)
    em, eu = math.exp(log_m - top), math.exp(log_u - top)
    return em / (em + eu)


def _normalised(counts: list[float]) -> tuple[float, ...]:
    total = sum(counts) + SMOOTHING * len(counts)
    return tuple((c + SMOOTHING) / total for c in counts)


def _maximise(patterns: Counter, weights: dict) -> tuple[list, list, float]:
    """New m, u and prevalence from the patterns weighed by their match posteriors."""
    m_counts = [[0.0] * len(LEVELS[f]) for f in FIELDS]
    u_counts = [[0.0] * len(LEVELS[f]) for f in FIELDS]
    matched = 0.0
    for vector, n in patterns.items():
        w = weights[vector]
        matched += n * w
        for i, level in enumerate(vector):
            if level is not None:
                m_counts[i][level] += n * w
                u_counts[i][level] += n * (1.0 - w)
    total = sum(patterns.values())
    prevalence = min(max(matched / total, SMOOTHING), 1.0 - SMOOTHING)
    return [_normalised(c) for c in m_counts], [_normalised(c) for c in u_counts], prevalence


def estimate(vectors: Iterable[Vector], start: MatchModel | None = None, prevalence: float = 0.1,
             max_iterations: int = 200, tolerance: float = 1e-6, fixed_u: bool = False) -> Estimate:
    """Fit m, u and the prevalence to ``vectors`` by EM, starting from ``start``.

    The thresholds of ``start`` are kept: they express the territory's risk
    policy, which data cannot estimate. With ``fixed_u`` the u of ``start``
    stay as given: blocked pairs agree on their blocking fields far more than
    random pairs do, so u is better counted on random pairs
    (:func:`u_from_pairs`) and only m and the prevalence learnt by EM.
    """
    start = start or MatchModel()
    patterns = Counter(vectors)
    if not patterns:
        raise ValueError("EM: no comparison vectors to estimate from")
    m = [tuple(start.m[f]) for f in FIELDS]
    u = [tuple(start.u[f]) for f in FIELDS]
    for iteration in range(1, max_iterations + 1):
        weights = {v: _posterior(v, prevalence, m, u) for v in patterns}
        new_m, new_u, new_prevalence = _maximise(patterns, weights)
        if fixed_u:
            new_u = u
        change = max(abs(a - b) for old, new in ((m, new_m), (u, new_u))
                     for x, y in zip(old, new) for a, b in zip(x, y))
        change = max(change, abs(new_prevalence - prevalence))
        m, u, prevalence = new_m, new_u, new_prevalence
        if change < tolerance:
            break
    model = replace(start, m=dict(zip(FIELDS, m)), u=dict(zip(FIELDS, u)))
    return Estimate(model, prevalence, iteration, change < tolerance)


def u_from_pairs(vectors: Iterable[Vector]) -> dict[str, tuple[float, ...]]:
    """u per field level counted on pairs of persons drawn at random.

    Nearly all random pairs are of two different persons, so the share of each
    level among them is u (missing fields are left out of their field's count).
    """
    counts = [[0.0] * len(LEVELS[f]) for f in FIELDS]
    for vector in vectors:
        for i, level in enumerate(vector):
            if level is not None:
                counts[i][level] += 1
    return dict(zip(FIELDS, (_normalised(c) for c in counts)))
