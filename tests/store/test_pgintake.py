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
    """If the statement is built, then it holds one binary array placeholder per column
    execute sends (the messages' and their two extra, then each other table's), in order."""
    sql = statement().sql
    sent = (len(ops.MESSAGE_COLUMNS) + len(pgintake.EXTRA_COLUMNS) + len(ops.DELIVERY_COLUMNS)
            + len(ops.JOURNAL_COLUMNS) + len(counters.COLUMNS) + len(counters.RATE_COLUMNS))
    assert len(re.findall(r"%b::", sql)) == sent
    assert "%s" not in sql


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
