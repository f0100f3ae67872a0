"""
The group commit's row writes on PostgreSQL: one statement per table, whatever the rows.

Why: what psycopg 3 spends per statement it sends is mostly Python, and ``executemany``
sends one statement per row: a batch of messages (a message row, a delivery and three journal
lines each) cost five statements per message, a large part of the writer thread's
CPU per message on PostgreSQL (figures in bench/README.md). Here
each kind of row goes as one statement whose parameters are one array per column
(``INSERT ... SELECT * FROM unnest($1::int8[], $2::text[], ...)``), sent in binary; the
server inserts them as a set, which costs it less than one execution per row too. Why not
``COPY``: it cannot ride the pipeline the writer's transaction runs in (engine.store.pgpipeline),
and would add two round trips per table.

The statements are made by :class:`engine.store.rawsql.RawStatements` for the PostgreSQL
dialect and run by its ``execute_many``: the write ops are the same on every database.

An ``UPDATE ... FROM unnest(...)`` or an upsert changes each row at most once per statement,
where ``executemany`` applies its rows one after the other: when two rows of a batch name the
same key (a delivery retried and sent within one group commit), the rows go one by one.

test-case-name: tests.store.test_pgbulk
"""
from __future__ import annotations

import functools
import struct
import weakref
from typing import Any, Callable, Sequence

from sqlalchemy import BigInteger, Float, Integer, LargeBinary, String, Table, Text


def supported(dialect: Any) -> bool:
    """Whether ``dialect`` is PostgreSQL through psycopg 3 (binary array parameters)."""
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


class ArrayType:
    """A PostgreSQL array type, and how a column of values goes in the binary array format:
    a header, then each element's length and bytes (-1 and no bytes for NULL).

    Why not one call per element: a batch's rows are a few dozen columns of tens of values,
    and a Python call per value was most of the writer thread's CPU on PostgreSQL. So a
    column that holds one value throughout (a channel's name, a status, NULL: most of them)
    encodes it once; the others go in a few calls made for the whole column (one ``pack`` of
    every fixed-width value, a ``join`` of sizes and bytes). A column mixing NULLs and values
    (rare) goes value by value.
    """

    _HEADER = struct.Struct(">iiIii")  # dimensions, has NULLs, element type, length, from

    def __init__(self, name: str, element_oid: int):
        self.name = name
        self.element_oid = element_oid

    def encode(self, values: Sequence[Any], charset: str) -> bytes:
        """``values`` (a column of a batch, a tuple or a list) as one binary array."""
        count = len(values)
        if not count:
            return self._HEADER.pack(1, 0, self.element_oid, 0, 1)
        first = values[0]
        if first is None and values.count(None) == count:
            return self._HEADER.pack(1, 1, self.element_oid, count, 1) + _NULL * count
        if None in values:
            return self._HEADER.pack(1, 1, self.element_oid, count, 1) + b"".join(
                [_NULL if value is None else self.element(value, charset)
                 for value in values])
        return self._HEADER.pack(1, 0, self.element_oid, count, 1) + self._elements(
            values, charset)

    def element(self, value: Any, charset: str) -> bytes:
        """One value that is not NULL: its length, then its bytes."""
        raise NotImplementedError

    def _elements(self, values: Sequence[Any], charset: str) -> bytes:
        """Every value of a column without NULLs, one element after the other."""
        raise NotImplementedError


class FixedArray(ArrayType):
    """An array of a fixed-width type (integers, floats): every value in one ``pack``."""

    def __init__(self, name: str, element_oid: int, code: str, size: int):
        super().__init__(name, element_oid)
        self._code, self._size = code, size
        self._one = struct.Struct(f">i{code}")
        self._columns: dict[int, struct.Struct] = {}  # column length -> its Struct

    def element(self, value: Any, charset: str) -> bytes:
        return self._one.pack(self._size, value)

    def _elements(self, values: Sequence[Any], charset: str) -> bytes:
        count = len(values)
        packer = self._columns.get(count)
        if packer is None:  # one per batch size (at most the writer's batch_max)
            packer = self._columns[count] = struct.Struct(">" + f"i{self._code}" * count)
        arguments = [self._size] * (2 * count)
        arguments[1::2] = values
        return packer.pack(*arguments)


class SizedArray(ArrayType):
    """An array of a variable-length type (text, bytea): sizes and bytes in one ``join``;
    a column holding one value throughout encodes it once."""

    def __init__(self, name: str, element_oid: int, to_bytes: Callable[[Any, str], bytes]):
        super().__init__(name, element_oid)
        self._to_bytes = to_bytes

    def element(self, value: Any, charset: str) -> bytes:
        data = self._to_bytes(value, charset)
        return _LENGTH.pack(len(data)) + data

    def _elements(self, values: Sequence[Any], charset: str) -> bytes:
        count, first = len(values), values[0]
        if values.count(first) == count:
            return self.element(first, charset) * count
        data = [self._to_bytes(value, charset) for value in values]
        parts: list[bytes] = [b""] * (2 * count)
        parts[0::2] = map(_LENGTH.pack, map(len, data))
        parts[1::2] = data
        return b"".join(parts)


_NULL = struct.pack(">i", -1)
_LENGTH = struct.Struct(">i")


# The array type of each column type the hot tables use (element OIDs from PostgreSQL's
# pg_type); another type is refused when the statement is built (at start-up), not when a
# batch is written.
_ARRAY_TYPES = (
    (BigInteger, FixedArray("int8[]", 20, "q", 8)),
    (Integer, FixedArray("int4[]", 23, "i", 4)),
    (Float, FixedArray("float8[]", 701, "d", 8)),
    (LargeBinary, SizedArray("bytea[]", 17, lambda v, _: bytes(v))),
    (String, SizedArray("text[]", 25, lambda v, charset: v.encode(charset))),
)


def array_type(table: Table, column: str) -> ArrayType:
    kind = table.c[column].type
    for sql_type, array in _ARRAY_TYPES:  # Text is a String; BigInteger an Integer: first
        if isinstance(kind, sql_type):
            return array
    raise TypeError(f"{table.name}.{column}: no PostgreSQL array type for {kind!r}")


class EncodedArray:
    """A parameter already in the binary array format: psycopg sends its bytes as they are
    (its own list adaptation would look for each list's element type at every statement)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def register(cursor: Any) -> None:
    """Teach a psycopg connection to send :class:`EncodedArray` parameters, once: its
    cursors copy its adapters when they are made, so this first one is taught too."""
    connection = cursor.connection
    if connection in _REGISTERED:
        return
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class EncodedArrayDumper(Dumper):
        format = Format.BINARY  # the type is the statement's cast (``$1::int8[]``)

        def dump(self, obj: EncodedArray) -> bytes:
            return obj.data

    connection.adapters.register_dumper(EncodedArray, EncodedArrayDumper)
    cursor.adapters.register_dumper(EncodedArray, EncodedArrayDumper)
    _REGISTERED.add(connection)


_REGISTERED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _unnest(table: Table, columns: Sequence[str], quote: Any) -> str:
    arrays = ", ".join(f"%b::{array_type(table, c).name}" for c in columns)
    names = ", ".join(quote(c) for c in columns)
    return f"unnest({arrays}) AS rows ({names})"


class BulkStatement:
    """One statement writing many rows, given as the tuples ``executemany`` would take."""

    def __init__(self, sql: str, types: Sequence[ArrayType], unique: Sequence[int] | None = None,
                 one_by_one: str | None = None, prepare: bool | None = None):
        self.sql = sql
        self._types = types  # of the row's columns, in order
        # None: psycopg prepares it once it has run a few times; False: planned at each
        # call, for a statement whose plan depends on the table's size (see look_up)
        self._prepare = prepare
        # positions in a row of the key each row must change once, and the statement that
        # writes the rows one by one when two rows share a key
        self._unique = unique
        self._one_by_one = one_by_one

    def execute(self, cursor: Any, rows: Sequence[tuple]) -> None:
        """Write ``rows`` through the DBAPI ``cursor`` (inside the caller's transaction)."""
        if self._unique is not None and _repeats_a_key(rows, self._unique):
            cursor.executemany(self._one_by_one, rows)
            return
        register(cursor)
        cursor.execute(self.sql, self.parameters(rows, cursor.connection.info.encoding),
                       prepare=self._prepare)

    def parameters(self, rows: Sequence[tuple], charset: str) -> list[EncodedArray]:
        """The statement's parameters for ``rows``: one array per column."""
        return [EncodedArray(kind.encode(column, charset))
                for kind, column in zip(self._types, zip(*rows))]

    def joins(self, rows: Sequence[tuple]) -> bool:
        """Whether these rows can go inside another statement (:func:`execute_together`):
        a statement that is prepared, and its rows in one set."""
        return self._prepare is None and not (self._unique is not None
                                              and _repeats_a_key(rows, self._unique))


def execute_together(cursor: Any, writes: Sequence[tuple[BulkStatement, Sequence[tuple]]]
                     ) -> None:
    """Write several kinds of rows (each statement with its rows, none empty) in one
    statement: ``WITH w0 AS (INSERT ...), w1 AS (INSERT ...) INSERT ...``.

    Why: each statement costs the writer thread a trip through psycopg (its cursor, its
    parameters, a send) and the server a Bind and an Execute, whatever its rows; a batch of
    messages writes four or five kinds of rows (messages, deliveries, journal lines, counts,
    rate buckets). PostgreSQL runs the parts of one statement on one snapshot, in no set
    order, none seeing what another writes: right for inserts and upserts of rows that are
    new or in tables of their own, which is what may join (:meth:`BulkStatement.joins`: not
    the updates, planned at each call, nor rows that repeat a key, written one by one). Those
    go first, on their own.
    """
    joined = []
    for statement, rows in writes:
        if statement.joins(rows):
            joined.append((statement, rows))
        else:
            statement.execute(cursor, rows)
    if len(joined) == 1:
        joined[0][0].execute(cursor, joined[0][1])
    elif joined:
        register(cursor)
        charset = cursor.connection.info.encoding
        cursor.execute(_joined_sql(tuple(statement for statement, _ in joined)),
                       [p for statement, rows in joined for p in statement.parameters(rows, charset)])


@functools.lru_cache(maxsize=64)  # a few combinations of the writers' statements
def _joined_sql(statements: tuple[BulkStatement, ...]) -> str:
    parts = ", ".join(f"w{n} AS ({statement.sql})" for n, statement in enumerate(statements[:-1]))
    return f"WITH {parts} {statements[-1].sql}"


def _repeats_a_key(rows: Sequence[tuple], positions: Sequence[int]) -> bool:
    keys = {tuple(row[i] for i in positions) for row in rows}
    return len(keys) < len(rows)


def look_up(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """Run a batch's look-up of rows by key (``WHERE id IN (...)``), planned for this call.

    psycopg prepares a statement on the server once it has run a few times, and PostgreSQL
    then settles on a generic plan, chosen when the table was small: a sequential scan,
    kept while the table grows (no ANALYZE has run yet). Then the duplicate check of every
    batch read the whole ``messages`` table. Unprepared, each call is planned with the table's
    current size, and the unique index serves it.
    """
    cursor.execute(sql, tuple(params), prepare=False)


def insert(table: Table, columns: Sequence[str], quote: Any) -> BulkStatement:
    names = ", ".join(quote(c) for c in columns)
    return BulkStatement(f"INSERT INTO {quote(table.name)} ({names}) "
                         f"SELECT {names} FROM {_unnest(table, columns, quote)}",
                         [array_type(table, c) for c in columns])


def insert_or_add(table: Table, keys: Sequence[str], column: str, quote: Any,
                  one_by_one: str) -> BulkStatement:
    """Insert each row, or add its ``column`` to the existing row's (``one_by_one``: the
    single-row statement, for a batch that names a key twice)."""
    columns = (*keys, column)
    names = ", ".join(quote(c) for c in columns)
    conflict = ", ".join(quote(c) for c in keys)
    name, target = quote(column), quote(table.name)
    return BulkStatement(
        f"INSERT INTO {target} ({names}) SELECT {names} FROM {_unnest(table, columns, quote)} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {name} = {target}.{name} + excluded.{name}",
        [array_type(table, c) for c in columns], unique=range(len(keys)),
        one_by_one=one_by_one)


def update(table: Table, assigned: Sequence[str], keys: Sequence[str], quote: Any,
           one_by_one: str) -> BulkStatement:
    """Set ``assigned`` where every column of ``keys`` equals the row's (rows: the assigned
    values, then the keys', as for ``one_by_one``, the single-row statement). Rows that
    repeat the first key (the id) go one by one, in order. Never prepared: a generic plan
    made while the table was small joins the rows to it by a sequential scan."""
    # the unnested columns get names of their own: a key may also be assigned (status)
    aliases = [f"v{i}" for i in range(len(assigned) + len(keys))]
    types = [array_type(table, c) for c in (*assigned, *keys)]
    arrays = ", ".join(f"%b::{kind.name}" for kind in types)
    sets = ", ".join(f"{quote(c)} = rows.{a}" for c, a in zip(assigned, aliases))
    where = " AND ".join(f"{quote(table.name)}.{quote(c)} = rows.{a}"
                         for c, a in zip(keys, aliases[len(assigned):]))
    return BulkStatement(
        f"UPDATE {quote(table.name)} SET {sets} FROM unnest({arrays}) AS rows "
        f"({', '.join(aliases)}) WHERE {where}",
        types, unique=(len(assigned),), one_by_one=one_by_one, prepare=False)
