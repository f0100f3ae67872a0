"""sender-ordered duplicate keys

Revision ID: 0011_sender_ordered_keys
Revises: 0010_lean_intake
Create Date: 2026-12-07 05:10:00

``messages.dedupe_key`` becomes a digest of the sender followed by the control id
(engine.store.dedupekey.sender_ordered_key) instead of a digest of the whole identity: one
sender's consecutive messages insert next to each other in the unique index instead of at
random pages. Every stored key is recomputed from its message's raw MSH, decoded as the
intake decodes it, so that a copy sent again after the upgrade is still found; a message
without a key keeps none. The new keys never equal an old one (they hold a marker no hex
digest has), so the rows are rewritten in place, in batches, with no conflict on the way.
The downgrade writes the earlier format back the same way.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_sender_ordered_keys'
down_revision = '0010_lean_intake'
branch_labels = None
depends_on = None

REKEY_BATCH = 5000


def upgrade() -> None:
    from engine.store.dedupekey import sender_ordered_key

    rekey(op.get_bind(), sender_ordered_key)


def downgrade() -> None:
    from engine.store.dedupekey import sha256_key

    rekey(op.get_bind(), sha256_key)


def rekey(bind, make_key, batch: int = REKEY_BATCH) -> None:
    """Recompute every non-NULL duplicate key with ``make_key(channel, identity)``, in id
    order, ``batch`` rows at a time.

    A message whose raw input has no MSH to read (a document received over XDS) was keyed
    on its stored sender and control id, as engine.store.ops.dedupe_key keys it. Two
    messages whose identities read the same today (a decoding that changed since their keys
    were written) would get one key: the older keeps it, the newer gets none, as the writer
    would have stored it DUPLICATE had it arrived today.
    """
    from engine.flow.dedupe import identity
    from mllp.header import HeaderError, read_header

    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, channel, sender, control_id, raw FROM messages "
            "WHERE dedupe_key IS NOT NULL AND id > :last ORDER BY id LIMIT :n"), {"last": last, "n": batch}).all()
        if not rows:
            return
        keys: dict[str, int] = {}
        for row in rows:
            try:
                decoded = identity(read_header(bytes(row.raw)))
            except HeaderError:
                if not row.control_id:
                    continue
                decoded = ((row.sender or "",), (row.control_id,))
            keys.setdefault(make_key(row.channel, decoded), row.id)
        taken = {key for key, in bind.execute(
            sa.text("SELECT dedupe_key FROM messages WHERE dedupe_key IN :keys")
            .bindparams(sa.bindparam("keys", expanding=True)), {"keys": list(keys)})
        } if keys else set()
        new = {row.id: None for row in rows}
        new.update({message_id: key for key, message_id in keys.items() if key not in taken})
        bind.execute(sa.text("UPDATE messages SET dedupe_key = :key WHERE id = :id"),
                     [{"id": i, "key": k} for i, k in new.items()])
        last = rows[-1].id
