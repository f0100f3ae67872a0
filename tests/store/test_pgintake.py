"""Tests for the intake's statement on PostgreSQL (engine.store.pgintake): how it is built.
What it stores is tested through the store, on both databases, in tests.store.test_stored_keys
and tests.store.test_batch_hostile."""
from __future__ import annotations

import re

from sqlalchemy.dialects import postgresql

from engine import status as st
from engine.store import counters, ops, pgintake


def statement() -> pgintake.IntakeStatement:
    quote = postgresql.dialect().identifier_preparer.quote
    return pgintake.IntakeStatement(quote, ops.MESSAGE_COLUMNS, ops.DELIVERY_COLUMNS,
                                    ops.JOURNAL_COLUMNS, counters.COLUMNS,
                                    counters.RATE_COLUMNS)


def test_one_array_parameter_per_column_sent():
    """If the statement is built, then it names one binary array per column execute sends
    (the messages' and their two extra, then each other table's), and no other parameter."""
    built = statement()
    sent = ({f"m_{c}" for c in (*ops.MESSAGE_COLUMNS, *pgintake.EXTRA_COLUMNS)}
            | {f"d_{c}" for c in ops.DELIVERY_COLUMNS} | {f"j_{c}" for c in ops.JOURNAL_COLUMNS}
            | {f"c_{c}" for c in counters.COLUMNS} | {f"r_{c}" for c in counters.RATE_COLUMNS})
    assert set(built.order) == sent and len(built.order) == len(sent)
    numbers = {int(n) for n in re.findall(r"\$(\d+)::", built.sql)}
    assert numbers == set(range(1, len(sent) + 1))
    assert "%" not in built.sql


def test_positional_numbers_each_name_once():
    """If a name appears several times, then it is one number each time, numbered in order
    of first appearance; a placeholder of another kind is refused."""
    sql, order = pgintake.positional("SELECT %(a)b::int8[], %(b)b::text[], %(a)b::int8[]")
    assert sql == "SELECT $1::int8[], $2::text[], $1::int8[]"
    assert order == ("a", "b")
    try:
        pgintake.positional("SELECT %(a)b, %s")
    except ValueError:
        return
    raise AssertionError("a %s placeholder was not refused")


def test_a_stored_key_is_no_error():
    """If the statement is built, then the messages go in skipping a stored key, which no
    other write of the statement refuses (only the messages table has a dedupe key)."""
    sql = statement().sql
    assert sql.count("ON CONFLICT (dedupe_key) DO NOTHING") == 1
    assert f"'{st.DUPLICATE}'" in sql


def test_constants_only():
    """A status that is not a plain name is refused when the statement is built."""
    try:
        pgintake._constant("x'; DROP")
    except ValueError:
        return
    raise AssertionError("not refused")
