"""
Tests for identity.matching.index: the in-memory candidate index.
"""
from __future__ import annotations

import inspect

from identity.matching import CandidateIndex, MemoryCandidateIndex, profile
from identity.matching.blocking import blocking_keys
from identity.model import INS, INS_NIR_TEST, IdentityStatus, Sex, Traits

ANNE = Traits("GARNIER", ("Anne",), "19750203", Sex.FEMALE, birth_place="69123",
              ins=INS("279035121518989", INS_NIR_TEST, IdentityStatus.VALIDATED))


def test_memory_index_has_every_method_of_the_protocol():
    """If the protocol grows a method, then the in-memory index must have it with its parameters."""
    methods = [name for name, _ in inspect.getmembers(CandidateIndex, inspect.isfunction)
               if not name.startswith("_")]
    assert set(methods) == {"candidates", "by_ins", "name_count", "person_count"}
    for name in methods:
        theirs = inspect.signature(getattr(CandidateIndex, name)).parameters
        ours = inspect.signature(getattr(MemoryCandidateIndex, name)).parameters
        assert list(ours) == list(theirs), name


def test_a_person_is_found_by_its_keys_and_ins_once():
    """If a person is indexed, then its keys and INS find it, once however many keys match."""
    index = MemoryCandidateIndex()
    index.add("anne", profile(ANNE))
    found = index.candidates(blocking_keys(profile(ANNE)))
    assert [p.person_id for p in found] == ["anne"]
    assert [p.person_id for p in index.by_ins("279035121518989")] == ["anne"]
    assert index.candidates(["nd:NOBODY:19000101"]) == []
    assert (index.name_count("family", "GARNIER"), index.name_count("birth_place", "69123")) == (1, 1)
    assert index.person_count() == 1


def test_reindexing_and_removing_leave_no_trace():
    """If a person is re-indexed with new traits, then the old keys no longer find it;
    if removed, then nothing does and the counts drop."""
    index = MemoryCandidateIndex()
    index.add("anne", profile(ANNE))
    moved = Traits("LEFEVRE", ("Anne",), "19750203", Sex.FEMALE)
    index.add("anne", profile(moved))
    assert index.by_ins("279035121518989") == []
    assert index.name_count("family", "GARNIER") == 0
    assert [p.person_id for p in index.candidates(blocking_keys(profile(moved)))] == ["anne"]
    index.remove("anne")
    assert index.candidates(blocking_keys(profile(moved))) == []
    assert len(index) == 0 and index.name_count("family", "LEFEVRE") == 0
