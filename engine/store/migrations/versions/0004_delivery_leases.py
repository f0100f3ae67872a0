"""delivery leases: which engine process sends which lane, until when

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 15:30:00

A new table, empty at first: the lanes are claimed by the engines when they start, so the
upgrade rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'delivery_leases',
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.String(length=64), nullable=False),
        sa.Column('lane', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=255), nullable=True),
        sa.Column('lease_until', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('channel', 'destination', 'lane'),
    )
    op.create_index('ix_delivery_leases_owner', 'delivery_leases', ['owner'])


def downgrade() -> None:
    op.drop_index('ix_delivery_leases_owner', table_name='delivery_leases')
    op.drop_table('delivery_leases')
