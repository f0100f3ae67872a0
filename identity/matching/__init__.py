"""
Matching: normalise, block, compare, score, decide.

test-case-name: tests.identity.test_resolver
"""
from identity.matching.index import CandidateIndex, IndexedPerson, MemoryCandidateIndex
from identity.matching.model import MatchModel
from identity.matching.profile import Profile, profile
from identity.matching.resolver import Matcher, Outcome, Resolution, ScoredCandidate

__all__ = [
    "CandidateIndex", "IndexedPerson", "Matcher", "MatchModel", "MemoryCandidateIndex", "Outcome",
    "Profile", "Resolution", "ScoredCandidate", "profile",
]
