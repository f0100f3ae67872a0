"""
The store's tables, in SQLAlchemy Core.

One row per inbound message (its raw bytes exactly as received), one row per delivery of a
message to a destination, and a journal of every status change. Times are UNIX seconds
(floats, UTC): the same on SQLite and PostgreSQL, cheap to write on the hot path, and easy to
bucket for rates. Message and delivery ids are allocated by the engine in blocks (see
``id_blocks``) so a whole batch can be inserted with one ``executemany`` and its deliveries can
name their message without a round trip.

Schema changes go through Alembic migrations in ``engine/store/migrations``; this module is
what the newest migration produces and what the code reads.

test-case-name: tests.store.test_migrate
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    PrimaryKeyConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from engine.store.records import HEADER_LIMITS, SENDER_LENGTH

metadata = MetaData()

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no separate unique index to maintain
# on every insert, and lookups by id go straight to the row. BIGINT elsewhere.
ID = BigInteger().with_variant(Integer, "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=False),
    Column("channel", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("node", String(64), nullable=False),
    Column("peer", String(255), nullable=False, server_default=""),
    Column("sender", String(SENDER_LENGTH), nullable=True),  # MSH-3 "|" MSH-4
    Column("control_id", String(HEADER_LIMITS[10]), nullable=True),  # MSH-10
    Column("message_type", String(HEADER_LIMITS[9]), nullable=True),  # MSH-9: ADT^A01^ADT_A01
    Column("charset", String(HEADER_LIMITS[18]), nullable=True),  # the payload's codec
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    # The first copy's channel and decoded MSH-3, MSH-4 as a digest, then its MSH-10 (see
    # engine.store.dedupekey: one sender's keys sort together); NULL on duplicates and
    # unparsed input.
    Column("dedupe_key", String(64), nullable=True, unique=True),
    Column("duplicate_of", BigInteger, nullable=True),
    Column("raw", LargeBinary, nullable=False),
)
Index("ix_messages_channel_received", messages.c.channel, messages.c.received_at)
# The recovery scan for RECEIVED messages; partial, so it holds only those few.
Index("ix_messages_received", messages.c.id,
      sqlite_where=messages.c.status == "RECEIVED",
      postgresql_where=messages.c.status == "RECEIVED")
# `messages list --control-id`: one more B-tree insert per message, next to the sender's
# previous ones when its control ids are numbered.
Index("ix_messages_control_id", messages.c.control_id)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("lane", Integer, nullable=False, server_default=text("0")),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("response", LargeBinary, nullable=True),
    # What this destination is sent when its mapping changed the message; NULL: the
    # message's raw bytes as received (the common case, stored once, in messages.raw).
    Column("payload", LargeBinary, nullable=True),
)
# The delivery workers' claim query: due work of one lane, oldest first. Partial, so that
# the index stays as small as the queue rather than growing with the history.
Index(
    "ix_deliveries_queue",
    deliveries.c.channel,
    deliveries.c.destination,
    deliveries.c.lane,
    deliveries.c.id,
    sqlite_where=deliveries.c.status == "QUEUED",
    postgresql_where=deliveries.c.status == "QUEUED",
)
Index("ix_deliveries_message", deliveries.c.message_id)
# Messages with a delivery parked in ERROR (``messages list --failed-deliveries``). Partial:
# no insert of the intake touches it (a delivery is created QUEUED).
Index("ix_deliveries_parked", deliveries.c.message_id,
      sqlite_where=deliveries.c.status == "ERROR",
      postgresql_where=deliveries.c.status == "ERROR")

journal = Table(
    "journal",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", BigInteger, nullable=False),
    Column("delivery_id", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_journal_message", journal.c.message_id)

# One row per id sequence ("messages", "deliveries"): the next value not yet handed out.
# A node takes a block of ids at a time in a short transaction of its own.
id_blocks = Table(
    "id_blocks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

# Messages and deliveries by status, kept by the writes that change a status, in the same
# transaction (engine.store.counters), so that status and /metrics read a few rows instead of
# counting the whole history. One row per node so that nodes sharing a PostgreSQL database
# never wait on each other's counter rows; readers sum over nodes. ``destination`` is "" for
# the messages themselves. Rows with node "" hold what was counted at migration or by a repair.
counts = Table(
    "counts",
    metadata,
    Column("node", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("node", "channel", "destination", "status", name="pk_counts"),
)

# Messages received (destination "") and deliveries sent per node, channel, destination and
# 10-second bucket (UNIX time // 10), kept like ``counts`` by the writes: the rates over the
# last minute read a few rows instead of a minute of messages. Old buckets are deleted.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("node", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("node", "channel", "destination", "bucket", name="pk_rate_buckets"),
)

# One row per delivery lane (a destination, or one partition of its ordering key): which
# engine process holds it and until when. A process sends a lane's deliveries only while it
# holds the lease; one that dies stops renewing, and another takes the lane over once
# ``lease_until`` has passed. Times are those of the database's clock (engine.store.claims).
delivery_leases = Table(
    "delivery_leases",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("lane", Integer, primary_key=True),
    Column("owner", String(255), nullable=True),  # NULL: released, free to claim
    Column("lease_until", Float, nullable=False),
)
Index("ix_delivery_leases_owner", delivery_leases.c.owner)

# One row per running engine process (several per node with --workers/--listeners), upserted
# at start and at each heartbeat, deleted on a clean stop: `aiguillage status` lists them and
# marks those whose heartbeat is old (the process died or lost the store).
nodes = Table(
    "nodes",
    metadata,
    Column("process", String(255), primary_key=True),  # "node/pid/start time", unique per process
    Column("name", String(64), nullable=False),  # engine.yaml's node
    Column("pid", Integer, nullable=False),
    Column("role", String(32), nullable=False),  # "intake+delivery", "intake", "delivery"
    Column("host", String(255), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("version", String(32), nullable=False),
    Column("received", BigInteger, nullable=False, server_default=text("0")),
    Column("sent", BigInteger, nullable=False, server_default=text("0")),
)
