"""
Tests for the PDQ search's storage (identity/store/names.py, identity/store/search.py):
names filed wherever traits are written (one by one, bulk, trait change), the prefix range,
and a query plan that reads the name index rather than every person; SQLite and PostgreSQL.
"""
from __future__ import annotations

from sqlalchemy import text

from engine.store import migrate
from engine.store.store import make_engine
from identity.model import Sex, Traits
from identity.service import SearchCriteria, SearchPage
from identity.store import operator_cause, update_traits
from identity.store.bulk import bulk_load
from identity.store.names import name_rows, prefix_range
from identity.store.persons import create_person
from identity.store.search import matching_persons, search
from tests.dbs import sqlite_url
from tests.identity.store.test_service_contract import ident

OPERATOR = operator_cause("bench")


def test_names_are_folded_and_distinct():
    """If a person's birth and used names fold alike, then one row; marks become spaces."""
    rows = name_rows(3, Traits("Le Gall", ("Émile", "émile", "Jean-Marc"), used_name="LE-GALL"))
    assert {(r["kind"], r["folded"]) for r in rows} == {("F", "LE GALL"), ("G", "EMILE"),
                                                        ("G", "JEAN MARC")}


def test_prefix_range_bounds_every_folded_continuation():
    low, high = prefix_range("dupré ")
    assert low == "DUPRE" and all(low <= n < high for n in ("DUPRE", "DUPREZ", "DUPRE 9 Z"))
    assert not low <= "DUPRF" < high
    assert prefix_range("-'") is None


def test_bulk_loaded_and_changed_persons_are_found(engine):
    """If persons come by the bulk loader, or change name, then the search sees it."""
    with engine.begin() as conn:
        bulk_load(conn, [(ident(str(n)), Traits(f"NOM{n:03d}", ("Zoé",), "19800101", Sex.FEMALE))
                         for n in range(50)], OPERATOR)
        moved = create_person(conn, Traits("ANCIEN", ("Luc",)), OPERATOR)
        update_traits(conn, moved, Traits("NOUVEAU", ("Luc",)), OPERATOR)
    with engine.connect() as conn:
        assert search(conn, SearchCriteria(family_name="nom01"), 0, 100).total == 10
        assert search(conn, SearchCriteria(given_name="zoe", birth_date="1980"), 0, 5).total == 50
        assert search(conn, SearchCriteria(family_name="ANCIEN"), 0, 5).total == 0
        assert [r.person_id for r in search(conn, SearchCriteria(family_name="NOUV"), 0, 5).records] \
            == [str(moved)]


def test_a_name_search_reads_the_name_index(tmp_path):
    """If a name start is searched, then SQLite's plan searches id_names by its key and
    reads id_traits by person id: no scan of every person. (PostgreSQL's plan depends on
    its statistics: bench/identity_store_speed.py measures it at 1 000 000 persons.)"""
    engine = make_engine(sqlite_url(tmp_path))
    migrate.ensure_current(engine)
    statement = matching_persons(SearchCriteria(family_name="DUP", given_name="J"))
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " / ".join(row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    engine.dispose()
    assert "SEARCH id_names USING" in plan and "SCAN id_traits" not in plan, plan


def test_the_status_is_read_per_person_found(engine):
    """If names are searched, then the persons' status is a subplan run for each person the
    names found, and both names are matched in id_names before any person is read: a join
    let PostgreSQL hash every person for a common name (bench/README.md, 1 000 000)."""
    statement = matching_persons(SearchCriteria(family_name="DUP", given_name="J"))
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        plan = "\n".join(str(row[-1]) for row in conn.execute(text(explain + sql)))
    subplan = "SubPlan" if engine.dialect.name == "postgresql" else "CORRELATED SCALAR SUBQUERY"
    assert subplan in plan, plan
    assert "JOIN" not in sql.upper(), sql


def test_a_broad_search_counts_then_pages(engine, monkeypatch):
    """If more persons match than one pass reads, then the total is counted and the page is
    the one asked, the same as in one pass."""
    with engine.begin() as conn:
        bulk_load(conn, [(ident(str(n)), Traits(f"NOM{n:03d}", ("Zoé",), "19800101", Sex.FEMALE))
                         for n in range(30)], OPERATOR)
    with engine.connect() as conn:
        one_pass = search(conn, SearchCriteria(given_name="zoe"), 7, 5)
        monkeypatch.setattr("identity.store.search.ONE_PASS", 10)
        counted = search(conn, SearchCriteria(given_name="zoe"), 7, 5)
        assert (counted.total, counted.records) == (30, one_pass.records)
        last = search(conn, SearchCriteria(given_name="zoe"), 28, 5)
        assert (last.total, [r.person_id for r in last.records]) == (30, ["29", "30"])
        assert search(conn, SearchCriteria(given_name="zoe"), 40, 5) == SearchPage(30, ())
