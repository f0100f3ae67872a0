"""
One behavioural suite for every :class:`identity.service.IdentityService`: the in-memory
fake (tests/identity/fakes.py) and the store's (identity/store/service.py) on SQLite and
PostgreSQL pass the same tests, so that the HL7 side's tests on the fake say what the
store does.

The store service runs here with a runner that does each call at once in its own
transaction (the same :func:`identity.store.deferred.in_transaction` its thread runs);
tests/identity/store/test_service_threads.py runs it in its real thread.
"""
from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from engine.store import migrate
from engine.store.store import make_engine
from identity.model import INS_NIR_TEST, IdentifierDomain, LocalIdentifier, Sex, Traits
from identity.service import (
    ConflictingIdentifier,
    Registered,
    SearchCriteria,
    ServiceError,
    UnknownIdentifier,
)
from identity.store.deferred import in_transaction
from identity.store.service import StoreIdentityService
from tests.dbs import BACKENDS, database
from tests.identity.cast import INS_MATRICULE, PEOPLE, seen
from tests.identity.fakes import MemoryIdentityService

CHU = IdentifierDomain("1.2.250.1.999.1.1", "CHU-NORD")
CHS = IdentifierDomain("1.2.250.1.999.1.2", "CH-SUD")
LAB = IdentifierDomain("1.2.250.1.999.1.3", "LABO")
CAUSE = "message:42"


def ident(value: str, domain: IdentifierDomain = CHU) -> LocalIdentifier:
    return LocalIdentifier(domain, value)


class ImmediateRunner:
    """Runs each operation at once in a transaction of its own (no thread), a fired Deferred."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def run(self, operation, *args, **kwargs):
        return defer.maybeDeferred(in_transaction, self.engine, operation, *args, **kwargs)


class Answers:
    """Any IdentityService whose Deferreds have fired, called as plain functions."""

    def __init__(self, service) -> None:
        self.service = service

    def __getattr__(self, name):
        method = getattr(self.service, name)

        def call(*args, **kwargs):
            outcome = []
            method(*args, **kwargs).addBoth(outcome.append)
            assert outcome, f"{name}: the Deferred has not fired"
            if isinstance(outcome[0], Failure):
                outcome[0].raiseException()
            return outcome[0]
        return call


@pytest.fixture(params=("memory",) + BACKENDS)
def kind(request):
    return request.param


@pytest.fixture
def index(kind, tmp_path):
    """The service under test, bound to CAUSE, answering synchronously."""
    if kind == "memory":
        yield Answers(MemoryIdentityService())
        return
    with database(kind, tmp_path) as url:
        engine = make_engine(url)
        migrate.ensure_current(engine)
        service = StoreIdentityService(engine, None, runner=ImmediateRunner(engine))
        yield Answers(service.for_cause(CAUSE))
        engine.dispose()


def ids(record) -> set[LocalIdentifier]:
    return set(record.identifiers)


# -- register --------------------------------------------------------------------------------

def test_a_new_identity_is_created_then_updated_by_its_identifier(index):
    """If an unknown identifier comes, then a person is created holding it; if it comes back
    with other traits, then the same person is updated."""
    first = index.register([ident("1")], PEOPLE["father"])
    assert first.outcome is Registered.CREATED
    moved = seen("father", address="9 place du Marché")
    again = index.register([ident("1")], moved)
    assert (again.outcome, again.person_id) == (Registered.UPDATED, first.person_id)
    record = index.person(ident("1"))
    assert record.person_id == first.person_id and record.traits == moved
    assert ids(record) == {ident("1")}


def test_a_second_system_is_linked_by_the_matcher(index):
    """If another system's identifier comes with the same traits, then the matcher links it
    to the known person, who then holds both."""
    first = index.register([ident("1")], PEOPLE["father"])
    second = index.register([ident("A", CHS)], PEOPLE["father"])
    assert (second.outcome, second.person_id) == (Registered.LINKED, first.person_id)
    assert ids(index.person(ident("A", CHS))) == {ident("1"), ident("A", CHS)}


def test_strangers_are_two_persons(index):
    """If two different people come, then they are two persons (the twins included)."""
    lucas = index.register([ident("1")], PEOPLE["twin-lucas"])
    hugo = index.register([ident("2")], PEOPLE["twin-hugo"])
    assert lucas.person_id != hugo.person_id
    assert index.person(ident("2")).traits == PEOPLE["twin-hugo"]


def test_an_ins_alone_does_not_name_its_holder(index):
    """If an unqualified INS already held comes with another local identifier and other
    traits, then it names nobody: no update of its holder."""
    ins = ident(INS_MATRICULE, INS_NIR_TEST)
    holder = index.register([ident("1"), ins], PEOPLE["father"])
    other = index.register([ident("2"), ins], PEOPLE["married"])
    assert other.outcome is not Registered.UPDATED
    assert other.person_id != holder.person_id
    assert index.person(ident("1")).traits == PEOPLE["father"]
    assert index.person(ins).person_id == holder.person_id


def test_a_qualified_ins_links(index):
    """If a qualified INS already known comes from another system, then it links there."""
    ins = ident(INS_MATRICULE, INS_NIR_TEST)
    first = index.register([ident("1"), ins], PEOPLE["qualified"])
    second = index.register([ident("B", CHS), ins], seen("qualified", birth_place=None))
    assert (second.outcome, second.person_id) == (Registered.LINKED, first.person_id)


def test_review_reasons_forbid_the_link(index):
    """If the sender doubts an identity (review reasons), then it is kept as a new person
    with the reasons, never linked, even when the matcher would link."""
    first = index.register([ident("1")], PEOPLE["father"])
    doubted = index.register([ident("A", CHS)], PEOPLE["father"], ("PID^1^32: qualified, no INS",))
    assert doubted.outcome is Registered.REVIEW
    assert doubted.review_reasons == ("PID^1^32: qualified, no INS",)
    assert doubted.person_id != first.person_id
    assert ids(index.person(ident("A", CHS))) == {ident("A", CHS)}


def test_review_reasons_with_nobody_to_propose(index):
    """If the sender doubts a wholly new identity, then it is a new person under review."""
    doubted = index.register([ident("1")], PEOPLE["married"], ("two INS matricules",))
    assert doubted.outcome is Registered.REVIEW
    assert index.person(ident("1")).person_id == doubted.person_id


# -- merge and unmerge -----------------------------------------------------------------------

def test_merge_then_unmerge(index):
    """If B is merged into A, then A holds both; unmerged, each holds its own again."""
    a = index.register([ident("1")], PEOPLE["father"])
    b = index.register([ident("2"), ident("B", LAB)], PEOPLE["mother"])
    assert index.merge([ident("1")], ident("2")) == a.person_id
    assert index.person(ident("B", LAB)).person_id == a.person_id
    assert ids(index.person(ident("2"))) == {ident("1"), ident("2"), ident("B", LAB)}
    assert index.unmerge(ident("2")) == b.person_id
    assert ids(index.person(ident("1"))) == {ident("1")}
    restored = index.person(ident("2"))
    assert (restored.person_id, ids(restored)) == (b.person_id, {ident("2"), ident("B", LAB)})
    assert restored.traits == PEOPLE["mother"]


def test_merge_names_the_survivor_by_any_identifier(index):
    """If the survivor's first identifier is unknown, then a later one names it."""
    a = index.register([ident("1")], PEOPLE["father"])
    index.register([ident("2")], PEOPLE["mother"])
    assert index.merge([ident("404"), ident("1")], ident("2")) == a.person_id


def test_merge_of_the_same_person_changes_nothing(index):
    a = index.register([ident("1"), ident("A", CHS)], PEOPLE["father"])
    assert index.merge([ident("1")], ident("A", CHS)) == a.person_id
    assert ids(index.person(ident("1"))) == {ident("1"), ident("A", CHS)}


def test_merge_about_nobody_is_refused(index):
    """If either side of a merge is unknown, then UnknownIdentifier names it."""
    index.register([ident("1")], PEOPLE["father"])
    with pytest.raises(UnknownIdentifier) as error:
        index.merge([ident("1")], ident("404"))
    assert error.value.identifier == ident("404")
    with pytest.raises(UnknownIdentifier) as error:
        index.merge([ident("405")], ident("1"))
    assert error.value.identifier == ident("405")


def test_unmerge_of_what_was_never_merged_is_refused(index):
    index.register([ident("1")], PEOPLE["father"])
    with pytest.raises(UnknownIdentifier):
        index.unmerge(ident("1"))
    with pytest.raises(UnknownIdentifier):
        index.unmerge(ident("404"))


def test_merge_chain_is_undone_last_first(index):
    """If C is merged into B and B into A, then unmerging B gives B back with C's
    identifiers, and unmerging C then gives C back."""
    index.register([ident("1")], PEOPLE["father"])
    b = index.register([ident("2")], PEOPLE["mother"])
    c = index.register([ident("3")], PEOPLE["married"])
    index.merge([ident("2")], ident("3"))
    index.merge([ident("1")], ident("2"))
    assert index.unmerge(ident("2")) == b.person_id
    assert ids(index.person(ident("3"))) == {ident("2"), ident("3")}
    assert index.unmerge(ident("3")) == c.person_id
    assert ids(index.person(ident("2"))) == {ident("2")}


# -- link and unlink -------------------------------------------------------------------------

def test_link_then_unlink(index):
    """If two identifiers are linked, then one person holds both; unlinked, two again."""
    a = index.register([ident("1")], PEOPLE["twin-lucas"])
    b = index.register([ident("A", CHS)], PEOPLE["married"])
    assert index.link(ident("1"), ident("A", CHS)) == a.person_id
    assert index.person(ident("A", CHS)).person_id == a.person_id
    assert index.unlink(ident("1"), ident("A", CHS)) is None
    assert index.person(ident("A", CHS)).person_id == b.person_id
    assert ids(index.person(ident("1"))) == {ident("1")}


def test_link_of_an_unknown_identifier_is_refused(index):
    index.register([ident("1")], PEOPLE["father"])
    with pytest.raises(UnknownIdentifier):
        index.link(ident("1"), ident("404"))
    with pytest.raises(UnknownIdentifier):
        index.link(ident("404"), ident("1"))


def test_unlink_of_what_was_never_linked_is_refused(index):
    index.register([ident("1")], PEOPLE["father"])
    index.register([ident("2")], PEOPLE["mother"])
    with pytest.raises(UnknownIdentifier):
        index.unlink(ident("1"), ident("2"))


# -- change of identifier --------------------------------------------------------------------

def test_change_identifier(index):
    """If an identifier is replaced, then the new one names the person and the old none."""
    a = index.register([ident("1"), ident("A", CHS)], PEOPLE["father"])
    assert index.change_identifier(ident("1"), ident("1bis")) == a.person_id
    assert index.person(ident("1")) is None
    assert ids(index.person(ident("1bis"))) == {ident("1bis"), ident("A", CHS)}


def test_change_onto_a_taken_identifier_is_a_conflict(index):
    index.register([ident("1")], PEOPLE["father"])
    index.register([ident("2")], PEOPLE["mother"])
    with pytest.raises(ConflictingIdentifier) as error:
        index.change_identifier(ident("1"), ident("2"))
    assert error.value.identifier == ident("2")
    assert ids(index.person(ident("1"))) == {ident("1")}


def test_change_of_an_unknown_identifier_is_refused(index):
    with pytest.raises(UnknownIdentifier):
        index.change_identifier(ident("404"), ident("405"))


def test_refusals_are_service_errors(index):
    """If anything is refused, then it is a ServiceError, which the feed turns into an ERR."""
    with pytest.raises(ServiceError):
        index.merge([ident("1")], ident("2"))


# -- search ----------------------------------------------------------------------------------

SEARCHED = {
    "1": Traits("DUPRÉ", ("Émile", "Jean"), "19800101", Sex.MALE, postcode="75011", city="PARIS",
                birth_place="75056"),
    "2": Traits("DUPONT", ("Marie",), "19811212", Sex.FEMALE, postcode="69001", city="LYON"),
    "3": Traits("MARTIN", ("Jeanne",), "19800520", Sex.FEMALE, used_name="DUPUIS", postcode="69001"),
    "4": Traits("LEFÈVRE", ("Hélène",), "19550303", Sex.FEMALE, postcode="35000"),
    "5": Traits("DURAND", ("Paul",), "19990909", Sex.MALE, postcode="13001"),
}


@pytest.fixture
def searched(index):
    """SEARCHED registered, CHU/<key> each, and a CHS identifier for persons 1 and 4."""
    held = {key: index.register([ident(key)], traits).person_id for key, traits in SEARCHED.items()}
    index.register([ident("1"), ident("X1", CHS)], SEARCHED["1"])
    index.register([ident("4"), ident("X4", CHS)], SEARCHED["4"])
    return held


def found(index, **criteria) -> set[str]:
    page = index.search(SearchCriteria(**criteria), 0, 100)
    assert page.total == len(page.records)
    return {r.person_id for r in page.records}


def test_search_names_by_their_start_case_and_accents_folded(index, searched):
    """If a name start is asked, then accents and case do not matter, and the used name counts."""
    assert found(index, family_name="DUP") == {searched["1"], searched["2"], searched["3"]}
    assert found(index, family_name="dupre") == {searched["1"]}
    assert found(index, family_name="lefe") == {searched["4"]}
    assert found(index, given_name="jean") == {searched["1"], searched["3"]}
    assert found(index, family_name="dup", given_name="EMI") == {searched["1"]}
    assert found(index, family_name="DUPRES") == set()


def test_search_by_birth_date_full_or_prefix(index, searched):
    assert found(index, birth_date="1980") == {searched["1"], searched["3"]}
    assert found(index, birth_date="198") == {searched["1"], searched["2"], searched["3"]}
    assert found(index, birth_date="19811212") == {searched["2"]}
    assert found(index, birth_date="1981121") == {searched["2"]}


def test_search_other_fields_exactly(index, searched):
    assert found(index, sex="F", postcode="69001") == {searched["2"], searched["3"]}
    assert found(index, city="LYON") == {searched["2"]}
    assert found(index, birth_place="75056") == {searched["1"]}
    assert found(index, postcode="6900") == set()


def test_search_restricted_to_an_identifier_or_domains(index, searched):
    assert found(index, family_name="D", identifier=ident("2")) == {searched["2"]}
    assert found(index, family_name="D", identifier=ident("404")) == set()
    assert found(index, sex="F", in_domains=(CHS,)) == {searched["4"]}
    assert found(index, sex="F", in_domains=(CHS, CHU)) == {searched["2"], searched["3"], searched["4"]}


def test_search_pages_continue_in_a_stable_order(index, searched):
    """If the matches are read two by two, then each page says the total, the pages join
    without gap or repeat, and asking again gives the same pages."""
    criteria = SearchCriteria(family_name="D")
    pages = [index.search(criteria, offset, 2) for offset in (0, 2, 4)]
    assert [p.total for p in pages] == [4, 4, 4]
    assert [len(p.records) for p in pages] == [2, 2, 0]
    order = [r.person_id for p in pages for r in p.records]
    assert sorted(order) == sorted({searched[k] for k in "1235"})
    assert [r.person_id for r in index.search(criteria, 0, 4).records] == order
    assert index.search(criteria, 1, 2).records == pages[0].records[1:] + pages[1].records[:1]


def test_search_answers_records_with_their_identifiers(index, searched):
    page = index.search(SearchCriteria(family_name="lefèvre"), 0, 10)
    (record,) = page.records
    assert ids(record) == {ident("4"), ident("X4", CHS)}
    assert record.traits == SEARCHED["4"]


def test_search_leaves_out_a_person_merged_away(index, searched):
    index.merge([ident("1")], ident("2"))
    assert found(index, family_name="DUPONT") == set()
    assert found(index, family_name="DUPRE") == {searched["1"]}


def test_both_faces_have_every_operation_of_the_protocol():
    """If the Protocol's signature changes, then the store's services fail here: the Deferred
    face with the same parameters, the synchronous one with ``cause`` more for changes."""
    import inspect

    from identity.store.service import StoreIdentityIndex
    from tests.identity.hl7.test_service import protocol_methods

    for name, method in protocol_methods().items():
        expected = list(inspect.signature(method).parameters)
        assert list(inspect.signature(getattr(StoreIdentityService, name)).parameters) == expected
        sync = list(inspect.signature(getattr(StoreIdentityIndex, name)).parameters)
        assert sync in (expected, expected + ["cause"]), name
