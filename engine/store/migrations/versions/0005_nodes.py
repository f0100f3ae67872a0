"""nodes: one row per running engine process, with its heartbeat

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 16:00:00

A new table: nothing existing is rewritten. Rows are written by the running processes.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'nodes',
        sa.Column('process', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.Column('heartbeat_at', sa.Float(), nullable=False),
        sa.Column('version', sa.String(length=32), nullable=False),
        sa.Column('received', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('sent', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('process'),
    )


def downgrade() -> None:
    op.drop_table('nodes')
