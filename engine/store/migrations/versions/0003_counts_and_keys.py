"""counts kept by the writes; unambiguous duplicate keys; room for HD senders

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 15:40:00

- ``counts``: messages and deliveries by node, channel, destination and status, kept by the
  write ops (engine.store.counters). Seeded here by counting the existing rows once.
- ``messages.dedupe_key``: a SHA-256 (64 hex characters) of the decoded channel, MSH-3,
  MSH-4 and MSH-10 instead of those values joined with ``|``. Every existing key is
  recomputed from its message's raw MSH so that a copy sent again after the upgrade is still
  found; two old keys that now meet (the same sender and control id written with different
  escapes) keep the older message's, the newer gets none.
- ``messages.sender``: 455 characters, room for two HD values (MSH-3, MSH-4) of HL7's maximum.
- ``rate_buckets``: messages received and deliveries sent per 10 seconds, kept by the write
  ops, for the rates over the last minute. Empty after the upgrade: the rates start from 0.

On SQLite the messages table is rebuilt (batch mode): the upgrade takes about as long as a
copy of the database. On PostgreSQL the key column is rewritten in place.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

REKEY_BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        'counts',
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('node', 'channel', 'destination', 'status', name='pk_counts'),
    )
    bind.execute(sa.text(
        "INSERT INTO counts (node, channel, destination, status, count) "
        "SELECT '', channel, '', status, COUNT(*) FROM messages GROUP BY channel, status"))
    bind.execute(sa.text(
        "INSERT INTO counts (node, channel, destination, status, count) "
        "SELECT '', channel, destination, status, COUNT(*) FROM deliveries "
        "GROUP BY channel, destination, status"))
    bind.execute(sa.text(
        "INSERT INTO counts (node, channel, destination, status, count) "
        "SELECT '', channel, destination, 'RETRYING', COUNT(*) FROM deliveries "
        "WHERE status = 'QUEUED' AND attempts > 0 GROUP BY channel, destination"))
    _rekey(bind)
    with op.batch_alter_table('messages') as batch:
        batch.alter_column('sender', existing_type=sa.String(length=255),
                           type_=sa.String(length=455), existing_nullable=True)
        batch.alter_column('dedupe_key', existing_type=sa.String(length=600),
                           type_=sa.String(length=64), existing_nullable=True)
    op.create_table(
        'rate_buckets',
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.String(length=64), nullable=False),
        sa.Column('bucket', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('node', 'channel', 'destination', 'bucket',
                                name='pk_rate_buckets'),
    )


def _rekey(bind) -> None:
    """Recompute every duplicate key from the message's raw MSH, in id order."""
    from engine.flow.dedupe import identity
    from engine.store.dedupekey import sha256_key
    from mllp.header import HeaderError, read_header

    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, channel, raw FROM messages WHERE dedupe_key IS NOT NULL AND id > :last "
            "ORDER BY id LIMIT :n"), {"last": last, "n": REKEY_BATCH}).all()
        if not rows:
            return
        keys: dict[str, int] = {}
        for row in rows:
            try:
                key = sha256_key(row.channel, identity(read_header(bytes(row.raw))))
            except HeaderError:
                continue
            keys.setdefault(key, row.id)
        taken = {key for key, in bind.execute(
            sa.text("SELECT dedupe_key FROM messages WHERE dedupe_key IN :keys")
            .bindparams(sa.bindparam("keys", expanding=True)), {"keys": list(keys)})}
        new = {row.id: None for row in rows}
        new.update({message_id: key for key, message_id in keys.items() if key not in taken})
        bind.execute(sa.text("UPDATE messages SET dedupe_key = :key WHERE id = :id"),
                     [{"id": i, "key": k} for i, k in new.items()])
        last = rows[-1].id


def downgrade() -> None:
    op.drop_table('rate_buckets')
    with op.batch_alter_table('messages') as batch:
        batch.alter_column('dedupe_key', existing_type=sa.String(length=64),
                           type_=sa.String(length=600), existing_nullable=True)
        batch.alter_column('sender', existing_type=sa.String(length=455),
                           type_=sa.String(length=255), existing_nullable=True)
    op.drop_table('counts')
