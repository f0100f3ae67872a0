"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 10:43:16.858962
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('lane', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deliveries_message', 'deliveries', ['message_id'], unique=False)
    op.create_index('ix_deliveries_queue', 'deliveries', ['channel', 'destination', 'lane', 'id'], unique=False, sqlite_where=sa.text("status = 'QUEUED'"), postgresql_where=sa.text("status = 'QUEUED'"))
    op.create_index('ix_deliveries_status', 'deliveries', ['channel', 'destination', 'status'], unique=False)
    op.create_table('id_blocks',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('next_value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('journal',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_journal_message', 'journal', ['message_id'], unique=False)
    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('peer', sa.String(length=255), server_default='', nullable=False),
    sa.Column('sender', sa.String(length=255), nullable=True),
    sa.Column('control_id', sa.String(length=199), nullable=True),
    sa.Column('message_type', sa.String(length=64), nullable=True),
    sa.Column('charset', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=600), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    op.create_index('ix_messages_channel_received', 'messages', ['channel', 'received_at'], unique=False)
    op.create_index('ix_messages_control_id', 'messages', ['control_id'], unique=False)
    op.create_index('ix_messages_received', 'messages', ['id'], unique=False, sqlite_where=sa.text("status = 'RECEIVED'"), postgresql_where=sa.text("status = 'RECEIVED'"))


def downgrade() -> None:
    op.drop_index('ix_messages_received', table_name='messages', sqlite_where=sa.text("status = 'RECEIVED'"), postgresql_where=sa.text("status = 'RECEIVED'"))
    op.drop_index('ix_messages_control_id', table_name='messages')
    op.drop_index('ix_messages_channel_received', table_name='messages')
    op.drop_table('messages')
    op.drop_index('ix_journal_message', table_name='journal')
    op.drop_table('journal')
    op.drop_table('id_blocks')
    op.drop_index('ix_deliveries_status', table_name='deliveries')
    op.drop_index('ix_deliveries_queue', table_name='deliveries', sqlite_where=sa.text("status = 'QUEUED'"), postgresql_where=sa.text("status = 'QUEUED'"))
    op.drop_index('ix_deliveries_message', table_name='deliveries')
    op.drop_table('deliveries')
