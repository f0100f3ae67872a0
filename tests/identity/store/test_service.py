"""
Tests for the stored index's operations (identity/store): resolve, link, unlink,
merge, unmerge and trait changes, each with its history, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from identity.model import IdentifierDomain, LocalIdentifier
from identity.store import (
    IdentityError,
    history,
    link,
    merge,
    operator_cause,
    resolve,
    unlink,
    unmerge,
    update_traits,
)
from identity.store.index import StoreCandidateIndex
from identity.store.persons import identifiers_of, traits_of
from identity.store.review import is_rejected
from identity.store.schema import id_blocking_keys, id_events
from tests.identity.cast import PEOPLE, seen

CHU = IdentifierDomain("1.2.250.1.999.1.1", "CHU-NORD")
CHS = IdentifierDomain("1.2.250.1.999.1.2", "CH-SUD")
OPERATOR = operator_cause("alice")


def ident(value: str, domain: IdentifierDomain = CHU) -> LocalIdentifier:
    return LocalIdentifier(domain, value)


def load(conn, *names: str) -> dict[str, int]:
    """Each named person of the cast, new in the index, with identifier CHU/<name>."""
    ids = {}
    for name in names:
        resolved = resolve(conn, PEOPLE[name], f"message:{name}", ident(name))
        assert resolved.outcome == "new"
        ids[name] = resolved.person_id
    return ids


def test_new_then_linked_from_another_system(engine):
    """If a second system sends the same person, then its identifier is linked to the
    person the first created, and the link event names the message and the score."""
    with engine.begin() as conn:
        ids = load(conn, "father", "mother", "married")
    with engine.begin() as conn:
        resolved = resolve(conn, seen("father"), "message:42", ident("77", CHS))
        assert (resolved.outcome, resolved.person_id) == ("linked", ids["father"])
        assert identifiers_of(conn, ids["father"]) == [(CHU.oid, "father"), (CHS.oid, "77")]
        event = history(conn, ids["father"])[-1]
    assert (event["kind"], event["cause"], event["value"]) == ("link", "message:42", "77")
    assert event["detail"]["score"] >= 18


def test_known_identifier_updates_traits_with_history(engine):
    """If a known identifier comes with new traits, then they are stored, re-indexed, and
    the event keeps the traits before and after."""
    with engine.begin() as conn:
        ids = load(conn, "married")
        resolved = resolve(conn, seen("married", phone="0611223344"), "message:9", ident("married"))
        assert (resolved.outcome, resolved.person_id) == ("known", ids["married"])
        assert traits_of(conn, ids["married"]).phone == "0611223344"
        event = history(conn, ids["married"])[-1]
    assert event["kind"] == "traits" and event["detail"]["after"]["phone"] == "0611223344"
    assert "phone" not in event["detail"]["before"]


def test_uncertain_identity_becomes_a_new_person_and_a_review_item(engine):
    """If the matcher is unsure (twins), then a new person is made and the pair queued."""
    with engine.begin() as conn:
        ids = load(conn, "twin-lucas")
        resolved = resolve(conn, PEOPLE["twin-hugo"], "message:7", ident("hugo"))
    assert resolved.outcome == "review" and resolved.person_id != ids["twin-lucas"]
    assert resolved.review_id is not None


def test_unlink_moves_the_identifier_to_a_new_person(engine):
    """If an identifier is unlinked, then it belongs to a new person with the same traits,
    the two are a rejected pair, and the old person's history names the operator."""
    with engine.begin() as conn:
        ids = load(conn, "father")
        link(conn, ident("x1", CHS), ids["father"], OPERATOR)
        new = unlink(conn, ident("x1", CHS), OPERATOR)
        assert identifiers_of(conn, new) == [(CHS.oid, "x1")]
        assert identifiers_of(conn, ids["father"]) == [(CHU.oid, "father")]
        assert traits_of(conn, new) == traits_of(conn, ids["father"])
        assert history(conn, ids["father"])[-1]["kind"] == "unlink"
        assert is_rejected(conn, new, ids["father"])


def test_merge_then_unmerge_restores_identifiers_and_candidacy(engine):
    """If two persons are merged then unmerged, then identifiers, blocking keys and
    counts are as before, and the pair is never proposed again."""
    with engine.begin() as conn:
        ids = load(conn, "father", "mother")
        index = StoreCandidateIndex(conn)
        before = (index.person_count(), conn.execute(select(func.count()).select_from(id_blocking_keys)).scalar())
        merge(conn, ids["father"], ids["mother"], OPERATOR)
        assert identifiers_of(conn, ids["father"]) == [(CHU.oid, "father"), (CHU.oid, "mother")]
        assert index.person_count() == 1
        with pytest.raises(IdentityError, match="merged into"):
            link(conn, ident("y"), ids["mother"], OPERATOR)
        unmerge(conn, ids["mother"], OPERATOR)
        after = (index.person_count(), conn.execute(select(func.count()).select_from(id_blocking_keys)).scalar())
        assert after == before
        assert identifiers_of(conn, ids["mother"]) == [(CHU.oid, "mother")]
        kinds = [e["kind"] for e in history(conn, ids["mother"])]
    assert kinds[-2:] == ["merge", "unmerge"]


def test_a_change_without_a_cause_is_refused_and_leaves_nothing(engine):
    """If a change names no cause, then IdentityError and no event nor person is written."""
    with pytest.raises(IdentityError, match="cause"):
        with engine.begin() as conn:
            resolve(conn, PEOPLE["father"], "someone", ident("f"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(id_events)).scalar() == 0


def test_one_operation_is_one_transaction(engine):
    """If an operation fails half way (merge into a missing person), then nothing of it stays."""
    with engine.begin() as conn:
        ids = load(conn, "father")
    with pytest.raises(IdentityError, match="does not exist"):
        with engine.begin() as conn:
            update_traits(conn, ids["father"], seen("father", phone="0700000000"), OPERATOR)
            merge(conn, 999, ids["father"], OPERATOR)
    with engine.connect() as conn:
        assert traits_of(conn, ids["father"]).phone == PEOPLE["father"].phone


def test_qualified_ins_is_stored_and_links(engine):
    """If a qualified INS is held by a stored person, then a second system's identity
    with that INS links to it, and the INS is read back with its PID-32 status."""
    with engine.begin() as conn:
        ids = load(conn, "qualified")
        stored = traits_of(conn, ids["qualified"]).ins
        resolved = resolve(conn, seen("qualified", first_names=("Dominique", "Marie")), "message:3",
                           ident("q2", CHS))
    assert stored == PEOPLE["qualified"].ins and stored.status.value == "QUAL"
    assert (resolved.outcome, resolved.resolution.reasons) == ("linked", ("qualified-ins",))


def test_a_new_person_has_all_its_rows(engine):
    """If a person is created (one statement on PostgreSQL, several on SQLite), then it has
    its traits, its folded names, its blocking keys, its share of the counts, its create event
    and its identifier, and the same on both databases."""
    from identity.matching.blocking import blocking_keys
    from identity.matching.profile import profile
    from identity.store.index import count_names
    from identity.store.names import name_rows
    from identity.store.schema import id_counts, id_names

    traits = PEOPLE["mother"]
    with engine.begin() as conn:
        person = load(conn, "mother")["mother"]
        assert traits_of(conn, person) == traits
        names = {(r.kind, r.folded) for r in conn.execute(
            select(id_names).where(id_names.c.person_id == person))}
        assert names == {(n["kind"], n["folded"]) for n in name_rows(person, traits)}
        keys = {r.key for r in conn.execute(
            select(id_blocking_keys).where(id_blocking_keys.c.person_id == person))}
        assert keys == set(blocking_keys(profile(traits))) and keys
        counted = count_names(profile(traits))
        counts = {r.name: r.value for r in conn.execute(
            select(id_counts).where(id_counts.c.name.in_(counted)))}
        assert counts == dict.fromkeys(counted, 1)
        assert [(e["kind"], e["cause"], e["detail"]["traits"]["birth_name"] if e["detail"]
                 and "traits" in e["detail"] else None)
                for e in history(conn, person)] == [("create", "message:mother", traits.birth_name),
                                                    ("link", "message:mother", None)]
        assert identifiers_of(conn, person) == [(CHU.oid, "mother")]
