"""
Tests for the review queue and its decisions (identity/store/review.py, decisions.py),
on SQLite and PostgreSQL.
"""
from __future__ import annotations

import pytest

from identity.store import IdentityError, accept, history, link_to, reject, resolve, unmerge
from identity.store.persons import identifiers_of, person_row
from identity.store.review import is_rejected, open_items
from tests.identity.cast import PEOPLE, seen
from tests.identity.store.test_service import CHS, OPERATOR, ident, load


def twins(conn) -> tuple[int, int, int]:
    """Lucas in the index, Hugo coming in: (lucas, hugo, review item)."""
    lucas = load(conn, "twin-lucas")["twin-lucas"]
    resolved = resolve(conn, PEOPLE["twin-hugo"], "message:7", ident("hugo", CHS))
    assert resolved.outcome == "review"
    return lucas, resolved.person_id, resolved.review_id


def test_accept_merges_the_incoming_into_the_candidate(engine):
    """If an item is accepted, then the incoming person is merged into the candidate and
    the item leaves the queue."""
    with engine.begin() as conn:
        lucas, hugo, item = twins(conn)
        assert [i["id"] for i in open_items(conn)] == [item]
        assert accept(conn, item, OPERATOR) == lucas
        assert person_row(conn, hugo).merged_into == lucas
        assert (CHS.oid, "hugo") in identifiers_of(conn, lucas)
        assert open_items(conn) == []


def test_rejected_pair_is_never_proposed_again(engine):
    """If a pair is rejected, then a later change of the incoming person's traits that
    would propose the same candidate opens no item; a new pair still does."""
    with engine.begin() as conn:
        lucas, hugo, item = twins(conn)
        reject(conn, item, OPERATOR)
        assert is_rejected(conn, hugo, lucas) and open_items(conn) == []
        again = resolve(conn, seen("twin-hugo", phone="0600000001"), "message:8", ident("hugo", CHS))
        assert (again.outcome, again.person_id, again.review_id) == ("known", hugo, None)
        assert again.resolution.person_id == str(lucas)  # proposed by the matcher, not queued
        assert open_items(conn) == []
        assert "reject" in [e["kind"] for e in history(conn, lucas)]


def test_known_person_with_changed_traits_can_open_a_review(engine):
    """If a known person's new traits make it look like another person, then an item is
    opened (never a merge)."""
    with engine.begin() as conn:
        ids = load(conn, "father", "married")
        resolved = resolve(conn, PEOPLE["father"], "message:11", ident("married"))
        assert resolved.outcome == "known" and resolved.review_id is not None
        assert person_row(conn, ids["married"]).status == "active"
        item = open_items(conn)[0]
    assert {item["person_id"], item["candidate_id"]} == {ids["father"], ids["married"]}


def test_link_to_another_person_merges_there_and_rejects_the_candidate(engine):
    """If the reviewer links the incoming to a third person, then it is merged there and
    the proposed pair is recorded as rejected."""
    with engine.begin() as conn:
        lucas, hugo, item = twins(conn)
        other = load(conn, "father")["father"]
        assert link_to(conn, item, other, OPERATOR) == other
        assert person_row(conn, hugo).merged_into == other
        assert is_rejected(conn, hugo, lucas)


def test_a_decided_item_cannot_be_decided_again(engine):
    """If an item was already decided, then a second decision is refused naming its status."""
    with engine.begin() as conn:
        _, _, item = twins(conn)
        reject(conn, item, OPERATOR)
        with pytest.raises(IdentityError, match="already rejected"):
            accept(conn, item, OPERATOR)


def test_unmerge_of_an_accepted_item_rejects_the_pair(engine):
    """If an accepted merge is undone, then the two are a rejected pair."""
    with engine.begin() as conn:
        lucas, hugo, item = twins(conn)
        accept(conn, item, OPERATOR)
        unmerge(conn, hugo, OPERATOR)
        assert identifiers_of(conn, hugo) == [(CHS.oid, "hugo")]
        assert is_rejected(conn, lucas, hugo)
