"""
What the store's index service does beyond the shared contract (test_service_contract.py):
every change in the history with its cause, the review items it opens, refusals only the
store makes, the synchronous face, and the ADT feed and PIX query of the HL7 side run on it,
on SQLite and PostgreSQL.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from identity.hl7.adt import plan_adt
from identity.hl7.audit import PIX_QUERY, query_audit
from identity.hl7.feed import apply_plan
from identity.hl7.pix import pix_answer, read_pix_query
from identity.hl7.response import Envelope
from identity.model import INS_NIR_TEST, LocalIdentifier
from identity.service import Registered, SearchCriteria, ServiceError
from identity.store import history
from identity.store.audit import list_audit
from identity.store.review import open_items
from identity.store.schema import id_events
from identity.store.service import StoreIdentityIndex, StoreIdentityService
from mappings.message import HL7Message
from tests.identity.cast import INS_MATRICULE, PEOPLE
from tests.identity.hl7.conformance import CHU as HL7_CHU, DOMAINS
from tests.identity.hl7.messages import adt, ipp, pid_segment
from tests.identity.store.test_service_contract import CHS, CHU, Answers, ImmediateRunner, ident


@pytest.fixture
def store(engine):
    """The store's service on ``engine`` (one per backend), answering synchronously."""
    return StoreIdentityService(engine, None, runner=ImmediateRunner(engine))


def causes(engine, person_id: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(e["kind"], e["cause"]) for e in history(conn, int(person_id))]


def test_every_change_is_in_the_history_with_its_message(engine, store):
    """If persons are created, linked, merged, unmerged, changed, then each event names the
    message that caused it."""
    a = Answers(store.for_message(1)).register([ident("1")], PEOPLE["father"])
    b = Answers(store.for_message(2)).register([ident("2")], PEOPLE["mother"])
    Answers(store.for_message(3)).merge([ident("1")], ident("2"))
    Answers(store.for_message(4)).unmerge(ident("2"))
    Answers(store.for_message(5)).change_identifier(ident("1"), ident("1bis"))
    assert causes(engine, a.person_id) == [
        ("create", "message:1"), ("link", "message:1"), ("merge", "message:3"),
        ("unmerge", "message:4"), ("change", "message:5")]
    assert ("create", "message:2") in causes(engine, b.person_id)


def test_a_change_without_cause_is_refused_and_reads_are_not(engine, store):
    """If the service is not bound to a cause, then a change is a ServiceError; reads work."""
    with pytest.raises(ServiceError, match="no cause"):
        Answers(store).register([ident("1")], PEOPLE["father"])
    assert Answers(store).person(ident("1")) is None
    assert Answers(store).search(SearchCriteria(family_name="MOREAU"), 0, 5).total == 0


def test_review_reasons_open_an_item_against_the_likely_person(engine, store):
    """If a doubted identity resembles a known person, then the item proposes that person;
    with nobody like it, the item proposes nobody."""
    index = Answers(store.for_message(1))
    first = index.register([ident("1")], PEOPLE["father"])
    doubted = index.register([ident("A", CHS)], PEOPLE["father"], ("two INS",))
    lone = index.register([ident("9")], PEOPLE["married"], ("two INS",))
    with engine.connect() as conn:
        items = {(i["person_id"], i["candidate_id"], i["reasons"]) for i in open_items(conn)}
    assert items == {(int(doubted.person_id), int(first.person_id), "two INS"),
                     (int(lone.person_id), None, "two INS")}


def test_an_identifier_held_by_another_is_not_taken(engine, store):
    """If a new identity comes with an INS another person holds, then the INS stays there and
    the newcomer is queued against its holder."""
    index = Answers(store.for_message(1))
    ins = ident(INS_MATRICULE, INS_NIR_TEST)
    holder = index.register([ident("1"), ins], PEOPLE["father"])
    other = index.register([ident("2"), ins], PEOPLE["married"])
    assert other.outcome is Registered.REVIEW and "held by person" in other.review_reasons[0]
    assert index.person(ins).person_id == holder.person_id
    with engine.connect() as conn:
        assert [(i["person_id"], i["candidate_id"]) for i in open_items(conn)] == \
            [(int(other.person_id), int(holder.person_id))]


def test_unlink_does_not_undo_a_merge(engine, store):
    """If two persons were merged (A40), then an unlink of them is refused, naming unmerge."""
    index = Answers(store.for_message(1))
    index.register([ident("1")], PEOPLE["father"])
    index.register([ident("2")], PEOPLE["mother"])
    index.merge([ident("1")], ident("2"))
    with pytest.raises(ServiceError, match="unmerge"):
        index.unlink(ident("1"), ident("2"))


def test_the_synchronous_face_answers_the_same(engine):
    """If the pipeline's worker calls StoreIdentityIndex, then it answers plain values, and
    accepts the engine's Store (anything with an ``engine``) as well as an engine."""
    class StoreLike:
        pass

    holder = StoreLike()
    holder.engine = engine
    index = StoreIdentityIndex(holder)
    created = index.register([ident("1")], PEOPLE["father"], cause="message:7")
    assert created.outcome is Registered.CREATED
    assert index.person(ident("1")).person_id == created.person_id
    assert index.merge([ident("1")], ident("1"), cause="message:8") == created.person_id
    assert index.search(SearchCriteria(family_name="mor"), 0, 1).total == 1
    with pytest.raises(ServiceError):
        index.unmerge(ident("1"), cause="message:9")
    with engine.connect() as conn:
        kinds = conn.execute(select(id_events.c.cause)).scalars().all()
    assert set(kinds) == {"message:7"}


def feed(service, event, *segments, control_id="C1"):
    outcome = []
    message = adt(event, *segments, control_id=control_id)
    apply_plan(service, plan_adt(message, DOMAINS)).addBoth(outcome.append)
    return outcome[0]


def test_the_adt_feed_runs_on_the_store(engine, store):
    """If the HL7 side's plans run on the store, then A04 creates, A40 merges, a merge of an
    unknown patient is AE 204 at MRG-1, and A47 onto a taken number is AE 205."""
    assert feed(store.for_message(1), "A04", pid_segment(ipp("1"))).ack_code == "AA"
    assert feed(store.for_message(2), "A04", pid_segment(ipp("2"), name="MARTIN^Paul^^^^^L",
                                                          sex="M")).ack_code == "AA"
    merged = feed(store.for_message(3), "A40", pid_segment(ipp("1")), f"MRG|{ipp('2')}")
    assert merged.ack_code == "AA"
    unknown = feed(store.for_message(4), "A40", pid_segment(ipp("1")), f"MRG|{ipp('404')}")
    assert [(e.code, e.location) for e in unknown.errors] == [(204, "MRG^1^1")]
    feed(store.for_message(5), "A04", pid_segment(ipp("5"), name="DURAND^Luc^^^^^L", sex="M"))
    taken = feed(store.for_message(6), "A47", pid_segment(ipp("5")), f"MRG|{ipp('1')}")
    assert [(e.code, e.location) for e in taken.errors] == [(205, "MRG^1^1")]
    record = Answers(store).person(LocalIdentifier(HL7_CHU, "2"))
    assert record.person_id == merged.results[0]


def test_a_pix_query_answered_from_the_store_is_audited(engine, store):
    """If a PIX query is answered from the store, then its audit record is kept and listed
    with who asked and what was disclosed."""
    Answers(store.for_message(1)).register(
        [LocalIdentifier(HL7_CHU, "00472318"), ident("77", CHS)], PEOPLE["father"])
    message = HL7Message.parse(
        "MSH|^~\\&|DPI|CABINET|PIXMGR|GHT|20260320100000||QBP^Q23^QBP_Q21|Q1|P|2.5\r"
        "QPD|IHE PIX Query|T1|00472318^^^CHU-EXEMPLE&1.2.250.1.999.1.1&ISO^PI\rRCP|I\r")
    read = read_pix_query(message, DOMAINS)
    person = Answers(store).person(read.identifier)
    result = pix_answer(message, read, person, Envelope("R1", "20260320100001", "PIXMGR"))
    record = query_audit(PIX_QUERY, message, result.status, "20260320100001", "127.0.0.1:4100",
                         [person.person_id], result.disclosed)
    first = Answers(store).audit(record)
    with engine.connect() as conn:
        (kept,) = list_audit(conn)
    assert kept["id"] == first
    assert (kept["transaction"], kept["requester"], kept["outcome"], kept["persons"]) == \
        ("ITI-9", "DPI", "OK", [person.person_id])
    assert kept["identifiers"] == [{"domain": CHS.oid, "value": "77"}]


def test_workers_racing_for_one_new_identifier_agree(engine):
    """If several worker threads register the same new identifier at once, then one person
    holds it and every worker answers that person (the loser retries once)."""
    import threading

    index = StoreIdentityIndex(engine)
    start = threading.Barrier(4)
    answers = []

    def worker(n):
        start.wait()
        answers.append(index.register([ident("1")], PEOPLE["father"], cause=f"message:{n}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and len({a.person_id for a in answers}) == 1
    assert index.search(SearchCriteria(family_name="MOREAU"), 0, 10).total == 1
