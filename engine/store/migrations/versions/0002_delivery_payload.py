"""delivery payload: what a destination is sent when its mapping changed the message

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:00:00

A nullable column, NULL for every existing row (they are sent the message's raw bytes, as
before), so the upgrade rewrites nothing and is instant on SQLite and PostgreSQL alike.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('payload', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('payload')
