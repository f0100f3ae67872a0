"""Tests for engine.store.consent: recording, withdrawing and finding oppositions, with their
history, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from engine.store import consent
from engine.store.consent import SHARED_RECORD, ConsentError
from engine.store.records import ConsentChange

INS = "1.2.250.1.213.1.4.10"
CHU = "1.2.250.1.999.1.1"


def test_an_opposition_is_found_until_withdrawn_and_its_history_kept(engine):
    """If a patient opposes then withdraws, then the opposition is found in between, not
    after, and both the opposition and its withdrawal stay in the history with their causes."""
    with engine.begin() as conn:
        opposition, new = consent.oppose(conn, INS, "279035121518989", SHARED_RECORD,
                                         "operator:alice", "told the nurse", at=100.0)
    assert new and opposition.open and opposition.patient == f"279035121518989^^^&{INS}&ISO"
    with engine.connect() as conn:
        found = consent.find_open(conn, [(CHU, "1"), (INS, "279035121518989")], SHARED_RECORD)
        assert (found.id, found.reason, found.since) == (opposition.id, "told the nurse", 100.0)
        assert consent.find_open(conn, [(INS, "279035121518989")], "other-scope") is None
    with engine.begin() as conn:
        withdrawn = consent.withdraw(conn, INS, "279035121518989", SHARED_RECORD,
                                     "operator:bob", at=200.0)
    assert (withdrawn.withdrawn_at, withdrawn.withdrawn_cause) == (200.0, "operator:bob")
    with engine.connect() as conn:
        assert consent.find_open(conn, [(INS, "279035121518989")], SHARED_RECORD) is None
        [kept] = consent.history(conn, [(INS, "279035121518989")])
    assert (kept.cause, kept.withdrawn_cause, kept.open) == ("operator:alice", "operator:bob",
                                                             False)


def test_opposing_twice_keeps_the_first_and_opposing_again_after_a_withdrawal_adds_a_row(engine):
    """If a patient opposes twice, then the second changes nothing; after a withdrawal, a new
    opposition is a new row of the history."""
    with engine.begin() as conn:
        first, _ = consent.oppose(conn, CHU, "42", SHARED_RECORD, "message:1", at=1.0)
        again, new = consent.oppose(conn, CHU, "42", SHARED_RECORD, "message:2", at=2.0)
        assert (again.id, new) == (first.id, False)
        consent.withdraw(conn, CHU, "42", SHARED_RECORD, "message:3", at=3.0)
        later, new = consent.oppose(conn, CHU, "42", SHARED_RECORD, "message:4", at=4.0)
        assert new and later.id != first.id
        causes = [(o.cause, o.withdrawn_cause) for o in consent.history(conn, [(CHU, "42")])]
    assert causes == [("message:1", "message:3"), ("message:4", None)]


def test_withdrawing_without_an_opposition_returns_none(engine):
    """If nothing is open, then withdraw records nothing and says so (None)."""
    with engine.begin() as conn:
        assert consent.withdraw(conn, CHU, "7", SHARED_RECORD, "operator:alice") is None
        assert consent.history(conn, [(CHU, "7")]) == []


@pytest.mark.parametrize("domain,value", [("", "1"), (CHU, ""), ("1." * 70, "1"),
                                          (CHU, "9" * 65)])
def test_a_key_that_cannot_be_kept_is_refused(engine, domain, value):
    """If the identifier has no value or domain, or is longer than the columns, then
    ConsentError says so and nothing is written."""
    with engine.begin() as conn:
        with pytest.raises(ConsentError):
            consent.oppose(conn, domain, value, SHARED_RECORD, "operator:alice")


def test_changes_of_a_decision_apply_to_every_identifier(engine):
    """If a decision carries an opposition for two identifiers, then both are opposed with
    the message as cause; a withdrawal then closes both."""
    ids = ((CHU, "000003"), (INS, "279035121518989"))
    with engine.begin() as conn:
        consent.apply_changes(conn, [ConsentChange(ids, SHARED_RECORD, True, "ZFA-9 = IO")],
                              "message:12", 10.0)
    with engine.connect() as conn:
        assert {(o.domain, o.cause, o.reason) for o in consent.history(conn, ids)} == {
            (CHU, "message:12", "ZFA-9 = IO"), (INS, "message:12", "ZFA-9 = IO")}
    with engine.begin() as conn:
        consent.apply_changes(conn, [ConsentChange(ids, SHARED_RECORD, False)],
                              "message:13", 11.0)
    with engine.connect() as conn:
        assert consent.find_open(conn, ids, SHARED_RECORD) is None
