"""lean intake: deliveries indexed by status only where they are parked

Revision ID: 0010_lean_intake
Revises: 0009_consent
Create Date: 2026-12-06 21:40:00

``ix_deliveries_status`` (channel, destination, status over every delivery ever made) cost one
more B-tree insert per delivery in the intake's group commit, for queries that do not need it:
the queue is read through the partial ``ix_deliveries_queue``, the counts are kept
(engine.store.counters), and ``messages list --failed-deliveries`` looks for parked deliveries,
which ``ix_deliveries_parked`` holds alone (a partial index, as small as what is parked). The
journal lines the intake no longer writes (engine.store.history) need no change of schema: the
lines already written stay and are read as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_lean_intake'
down_revision = '0009_consent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_deliveries_status', table_name='deliveries')
    op.create_index('ix_deliveries_parked', 'deliveries', ['message_id'],
                    sqlite_where=sa.text("status = 'ERROR'"),
                    postgresql_where=sa.text("status = 'ERROR'"))


def downgrade() -> None:
    op.drop_index('ix_deliveries_parked', table_name='deliveries')
    op.create_index('ix_deliveries_status', 'deliveries', ['channel', 'destination', 'status'])
