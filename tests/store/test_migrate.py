"""Tests for engine.store.migrate: creating, checking and upgrading the schema, on both backends."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select, text

from engine import status as st
from engine.store import migrate
from engine.store.schema import id_blocks, messages, metadata
from engine.store.store import make_engine
import identity.store.schema  # noqa: F401  the identity tables live on the same metadata
from xds.registry.tables import registry_metadata


@pytest.fixture
def empty_engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _id_blocks(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(id_blocks.c.name, id_blocks.c.next_value)).all())


def _stamp(engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_ensure_current_creates_schema_in_empty_database(empty_engine):
    """If the database is empty, then ensure_current creates every table at the head
    revision and seeds one id block row per sequence, starting at 1."""
    assert migrate.current_revision(empty_engine) is None
    migrate.ensure_current(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert {"messages", "deliveries", "journal", "id_blocks", "alembic_version"} <= tables
    assert _id_blocks(empty_engine) == {"messages": 1, "deliveries": 1}


def _whole_schema() -> MetaData:
    """The store's tables and the XDS registry's (xds/registry/tables.py), in one MetaData."""
    combined = MetaData()
    for part in (metadata, registry_metadata):
        for table in part.tables.values():
            table.to_metadata(combined)
    return combined


def test_migrations_produce_the_schema_the_code_reads(empty_engine):
    """If the migrations have run, then the database matches schema.py and the XDS registry's
    tables (no autogenerate diff)."""
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), _whole_schema())
    assert diff == []


def test_ensure_current_on_current_database_changes_nothing(empty_engine):
    """If the database is at head, then ensure_current leaves the id blocks alone."""
    migrate.ensure_current(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(id_blocks.update().values(next_value=500))
    migrate.ensure_current(empty_engine)
    assert _id_blocks(empty_engine) == {"messages": 500, "deliveries": 500}


def test_empty_database_refused_when_creation_not_allowed(empty_engine):
    """If the database is empty and create_if_empty is False, then SchemaOutOfDate names
    `aiguillage db upgrade` and nothing is created."""
    with pytest.raises(migrate.SchemaOutOfDate, match="aiguillage db upgrade"):
        migrate.ensure_current(empty_engine, create_if_empty=False)
    assert "messages" not in inspect(empty_engine).get_table_names()


def test_older_revision_refused(empty_engine, monkeypatch):
    """If the database is at an older revision than the code's head, then ensure_current
    raises SchemaOutOfDate naming both revisions and `aiguillage db upgrade`."""
    migrate.ensure_current(empty_engine)
    old = migrate.head_revision()
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999")
    with pytest.raises(migrate.SchemaOutOfDate) as raised:
        migrate.ensure_current(empty_engine)
    message = str(raised.value)
    assert f"revision {old}" in message and "9999" in message
    assert "run `aiguillage db upgrade`" in message


def test_unknown_revision_refused(empty_engine):
    """If the database names a revision this code does not know, then ensure_current raises
    SchemaOutOfDate instead of touching it."""
    migrate.ensure_current(empty_engine)
    _stamp(empty_engine, "0000deadbeef")
    with pytest.raises(migrate.SchemaOutOfDate, match="0000deadbeef.*aiguillage db upgrade"):
        migrate.ensure_current(empty_engine)
    assert migrate.current_revision(empty_engine) == "0000deadbeef"


def test_upgrade_twice_is_a_no_op(empty_engine):
    """If upgrade runs on a database already at head, then it reports (head, head) and keeps
    the tables and the id blocks as they were."""
    head = migrate.head_revision()
    assert migrate.upgrade(empty_engine) == (None, head)
    with empty_engine.begin() as conn:
        conn.execute(id_blocks.update().where(id_blocks.c.name == "messages")
                     .values(next_value=42))
    tables = sorted(inspect(empty_engine).get_table_names())
    assert migrate.upgrade(empty_engine) == (head, head)
    assert sorted(inspect(empty_engine).get_table_names()) == tables
    assert _id_blocks(empty_engine) == {"messages": 42, "deliveries": 1}


def test_tables_without_revision_refused(empty_engine):
    """If the database already has tables but no schema revision (not an Aiguillage store),
    then ensure_current refuses it with a message saying so, and creates nothing."""
    with empty_engine.begin() as conn:
        conn.execute(text("CREATE TABLE patients (id INTEGER PRIMARY KEY)"))
    with pytest.raises(migrate.SchemaOutOfDate, match="not an Aiguillage store"):
        migrate.ensure_current(empty_engine)
    assert inspect(empty_engine).get_table_names() == ["patients"]


def _at_0002_with_history(engine) -> None:
    """A store at revision 0002 holding messages keyed the old way ("channel|MSH-3|MSH-4|
    MSH-10"), two of them the same sender spelt with different escapes, and deliveries."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0002")
    msh = "MSH|^~\\&|{app}|HOSP|E|F|2026||ADT^A01|{ctl}|P|2.5\rPID|1\r"
    rows = [(1, "HIS", "C1", st.TRANSFORMED), (2, "A\\T\\B", "C2", st.RECEIVED),
            (3, "A&B", "C2", st.TRANSFORMED), (4, "HIS", "C1", st.DUPLICATE)]
    with engine.begin() as conn:
        for number, app, ctl, status in rows:
            key = None if status == st.DUPLICATE else f"adt|{app}|HOSP|{ctl}"
            conn.execute(text(
                "INSERT INTO messages (id, channel, received_at, node, peer, sender, control_id,"
                " status, dedupe_key, raw) VALUES (:id, 'adt', 1.0, 'n', '', :sender, :ctl,"
                " :status, :key, :raw)"),
                {"id": number, "sender": f"{app}|HOSP", "ctl": ctl, "status": status,
                 "key": key, "raw": msh.format(app=app, ctl=ctl).encode()})
        for number, status in ((1, st.SENT), (2, st.QUEUED), (3, st.ERROR), (4, st.QUEUED)):
            conn.execute(text(
                "INSERT INTO deliveries (id, message_id, channel, destination, status, attempts,"
                " created_at, updated_at, next_attempt_at) VALUES (:id, 1, 'adt', 'out',"
                " :status, :attempts, 1.0, 1.0, 1.0)"),
                {"id": number, "status": status, "attempts": number // 2})


def test_upgrade_from_0002_keeps_history_counts_and_duplicates(empty_engine):
    """If a store at 0002 holding messages and deliveries is upgraded, then the counts equal
    a recount, every duplicate key is the new key of its message (a copy sent again is still
    a duplicate), and of two old keys that now meet the older message keeps its key."""
    from engine.flow.dedupe import identity
    from engine.store import counters
    from engine.store.dedupekey import key
    from mllp.header import read_header

    _at_0002_with_history(empty_engine)
    assert migrate.upgrade(empty_engine) == ("0002", migrate.head_revision())
    with empty_engine.connect() as conn:
        assert counters.differences(conn) == {}
        assert counters.totals(conn)[("adt", "", st.TRANSFORMED)] == 2
        assert counters.totals(conn)[("adt", "out", st.SENT)] == 1
        assert counters.totals(conn)[("adt", "out", counters.RETRYING)] == 2
        stored = {row.id: (row.dedupe_key, bytes(row.raw)) for row in conn.execute(
            select(messages.c.id, messages.c.dedupe_key, messages.c.raw))}
        diff = compare_metadata(MigrationContext.configure(conn), _whole_schema())
    assert diff == []
    expected = {n: key("adt", identity(read_header(stored[n][1]))) for n in (1, 2)}
    assert {n: stored[n][0] for n in stored} == {1: expected[1], 2: expected[2], 3: None,
                                                 4: None}


def _at_0010_with_sha256_keys(engine) -> dict[int, tuple]:
    """A store at revision 0010 whose keys were written by that revision's code (SHA-256 of
    the whole identity): messages of one sender, an escaped sender, an HD sender with a
    control id too long to be kept as it is, a duplicate and an unreadable message (no key),
    and a document received over XDS (no MSH: keyed on its sender and control id columns).
    Returns each row's (raw, sender, control id)."""
    from alembic import command

    from engine.flow.dedupe import identity
    from engine.store.dedupekey import sha256_key
    from mllp.header import read_header

    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0010_lean_intake")
    msh = "MSH|^~\\&|{app}|HOSP|E|F|2026||ADT^A01|{ctl}|P|2.5\rPID|1\r"
    long_id = "L" * 50
    rows = {1: ("HIS", "ADT000000001", st.TRANSFORMED), 2: ("HIS", "ADT000000002", st.RECEIVED),
            3: ("A\\T\\B", "C2", st.TRANSFORMED), 4: ("LAB^1.2.3^ISO", long_id, st.TRANSFORMED),
            5: ("HIS", "ADT000000001", st.DUPLICATE), 6: (None, None, st.ERROR),
            7: (None, "urn:uuid:7", st.TRANSFORMED)}
    stored = {}
    with engine.begin() as conn:
        for number, (app, ctl, status) in rows.items():
            if number == 6:
                raw, sender, key = b"not HL7 at all", None, None
            elif number == 7:
                raw, sender = b"<Envelope>an XDS submission</Envelope>", "xds-source"
                key = sha256_key("adt", ((sender,), (ctl,)))
            else:
                raw, sender = msh.format(app=app, ctl=ctl).encode(), f"{app}|HOSP"
                key = None if status == st.DUPLICATE else sha256_key(
                    "adt", identity(read_header(raw)))
            conn.execute(text(
                "INSERT INTO messages (id, channel, received_at, node, peer, sender, control_id,"
                " status, dedupe_key, raw) VALUES (:id, 'adt', 1.0, 'n', '', :sender, :ctl,"
                " :status, :key, :raw)"),
                {"id": number, "sender": sender, "ctl": ctl, "status": status, "key": key,
                 "raw": raw})
            stored[number] = (raw, sender, ctl)
    return stored


def _keys(engine) -> dict[int, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(messages.c.id, messages.c.dedupe_key)).all())


def _resend(engine, stored: dict[int, tuple], numbers) -> list:
    """The messages ``numbers`` received again, as the intake hands them to the store (HL7
    with its decoded identity, a document without), through the writer's op."""
    import dataclasses

    from engine.flow.dedupe import identity
    from engine.store import ops
    from engine.store.rawsql import RawStatements
    from mllp.header import HeaderError, read_header
    from tests.store.storecase import inbound

    records = []
    for number in numbers:
        raw, sender, ctl = stored[number]
        record = dataclasses.replace(inbound(ctl, channel="adt", sender=sender), raw=raw)
        try:
            record = dataclasses.replace(record, identity=identity(read_header(raw)))
        except HeaderError:
            pass  # a document: keyed on sender and control id
        records.append(record)
    with engine.begin() as conn:  # past the rows written without the allocator
        conn.execute(text("UPDATE id_blocks SET next_value = 100"))
    write = ops.IngestOp(ops.IdAllocator(engine, "messages"), "n", RawStatements(engine.dialect))
    write.prepare(records)
    try:
        with engine.begin() as conn:
            results = write.apply(conn, records)
    except Exception as exc:  # PostgreSQL's lean way refused: as the writer does, again
        assert write.again(exc)
        write.prepare(records)
        with engine.begin() as conn:
            results = write.apply(conn, records)
    with engine.begin() as conn:  # as the writer does, once the batch has committed
        return write.finish(conn, results)


def test_upgrade_to_sender_ordered_keys_still_finds_copies(empty_engine):
    """If a store keyed by revision 0010 is upgraded, then every key is the new format of
    its message's identity, the messages without one still have none, and a copy of each
    keyed message sent after the upgrade is a DUPLICATE of it (a new message is not)."""
    from engine.flow.dedupe import identity
    from engine.store.dedupekey import sender_ordered_key
    from mllp.header import read_header

    stored = _at_0010_with_sha256_keys(empty_engine)
    assert migrate.upgrade(empty_engine) == ("0010_lean_intake", migrate.head_revision())
    expected = {n: sender_ordered_key("adt", identity(read_header(stored[n][0])))
                for n in (1, 2, 3, 4)}
    expected.update({5: None, 6: None, 7: sender_ordered_key("adt", (("xds-source",),
                                                                     ("urn:uuid:7",)))})
    assert _keys(empty_engine) == expected
    assert expected[1][:-1] == expected[2][:-1]  # one sender's keys: neighbours
    stored[8] = (stored[1][0].replace(b"ADT000000001", b"ADT000000003"), "HIS|HOSP",
                 "ADT000000003")
    results = _resend(empty_engine, stored, (1, 2, 3, 4, 7, 8))
    assert [(r.status, r.duplicate_of) for r in results] == [
        (st.DUPLICATE, 1), (st.DUPLICATE, 2), (st.DUPLICATE, 3), (st.DUPLICATE, 4),
        (st.DUPLICATE, 7), (st.RECEIVED, None)]
    assert results[-1].message_id >= 100


def test_downgrade_writes_the_sha256_keys_back(empty_engine):
    """If the store is upgraded past 0011 and then downgraded to 0010, then every key is
    the one revision 0010 wrote, NULLs included."""
    from alembic import command

    _at_0010_with_sha256_keys(empty_engine)
    before = _keys(empty_engine)
    migrate.upgrade(empty_engine)
    assert _keys(empty_engine) != before
    with empty_engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0010_lean_intake")
    assert _keys(empty_engine) == before


def test_rekey_in_small_batches(empty_engine):
    """If the keys are recomputed a few rows at a time, then they are those of one pass,
    and of two rows whose identities now read the same the older keeps the key."""
    import importlib.util
    from pathlib import Path

    from engine.store.dedupekey import sender_ordered_key, sha256_key

    path = (Path(migrate.__file__).parent / "migrations" / "versions"
            / "0011_sender_ordered_keys.py")
    spec = importlib.util.spec_from_file_location("rekey_0011", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _at_0010_with_sha256_keys(empty_engine)
    with empty_engine.begin() as conn:  # a key written by a decoding that has changed since
        conn.execute(text("UPDATE messages SET dedupe_key = 'an older spelling' WHERE id = 5"))
    with empty_engine.begin() as conn:
        module.rekey(conn, sender_ordered_key, batch=2)
    in_small_batches = _keys(empty_engine)
    assert in_small_batches[5] is None and in_small_batches[1] is not None
    with empty_engine.begin() as conn:
        module.rekey(conn, sha256_key, batch=5000)
        module.rekey(conn, sender_ordered_key, batch=5000)
    assert _keys(empty_engine) == in_small_batches
