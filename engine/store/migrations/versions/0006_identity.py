"""identity: the master patient index (persons, identifiers, traits, history, review)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 16:30:00

New tables only (prefixed ``id_``), so the upgrade touches no existing row. The tables are
described in identity/store/schema.py and docs/identity.md.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('id_blocking_keys',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('person_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('key', 'person_id')
    )
    op.create_index('ix_id_blocking_keys_person', 'id_blocking_keys', ['person_id'], unique=False)
    op.create_table('id_counts',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('id_domains',
    sa.Column('oid', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=64), server_default='', nullable=False),
    sa.Column('id_type', sa.String(length=16), server_default='PI', nullable=False),
    sa.PrimaryKeyConstraint('oid')
    )
    op.create_table('id_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('other_person_id', sa.BigInteger(), nullable=True),
    sa.Column('domain', sa.String(length=64), nullable=True),
    sa.Column('value', sa.String(length=64), nullable=True),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_id_events_other', 'id_events', ['other_person_id'], unique=False)
    op.create_index('ix_id_events_person', 'id_events', ['person_id'], unique=False)
    op.create_table('id_identifiers',
    sa.Column('domain', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('linked_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('domain', 'value')
    )
    op.create_index('ix_id_identifiers_person', 'id_identifiers', ['person_id'], unique=False)
    op.create_table('id_persons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('id_rejected_pairs',
    sa.Column('low', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('high', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('low', 'high')
    )
    op.create_table('id_review',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('candidate_id', sa.BigInteger(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('reasons', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.Float(), nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.Column('decided_at', sa.Float(), nullable=True),
    sa.Column('decided_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_id_review_candidate', 'id_review', ['candidate_id'], unique=False)
    op.create_index('ix_id_review_person', 'id_review', ['person_id'], unique=False)
    op.create_index('ix_id_review_status', 'id_review', ['status', 'id'], unique=False)
    op.create_table('id_traits',
    sa.Column('person_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('birth_name', sa.String(length=128), nullable=True),
    sa.Column('used_name', sa.String(length=128), nullable=True),
    sa.Column('first_names', sa.String(length=255), nullable=True),
    sa.Column('birth_date', sa.String(length=8), nullable=True),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('birth_place', sa.String(length=16), nullable=True),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('postcode', sa.String(length=16), nullable=True),
    sa.Column('city', sa.String(length=128), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('ins', sa.String(length=15), nullable=True),
    sa.Column('ins_domain', sa.String(length=64), nullable=True),
    sa.Column('ins_status', sa.String(length=8), nullable=True),
    sa.Column('family_norm', sa.String(length=128), nullable=False),
    sa.Column('profile', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('person_id')
    )
    op.create_index('ix_id_traits_family', 'id_traits', ['family_norm', 'birth_date'], unique=False)
    op.create_index('ix_id_traits_ins', 'id_traits', ['ins'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_id_traits_ins', table_name='id_traits')
    op.drop_index('ix_id_traits_family', table_name='id_traits')
    op.drop_table('id_traits')
    op.drop_index('ix_id_review_status', table_name='id_review')
    op.drop_index('ix_id_review_person', table_name='id_review')
    op.drop_index('ix_id_review_candidate', table_name='id_review')
    op.drop_table('id_review')
    op.drop_table('id_rejected_pairs')
    op.drop_table('id_persons')
    op.drop_index('ix_id_identifiers_person', table_name='id_identifiers')
    op.drop_table('id_identifiers')
    op.drop_index('ix_id_events_person', table_name='id_events')
    op.drop_index('ix_id_events_other', table_name='id_events')
    op.drop_table('id_events')
    op.drop_table('id_domains')
    op.drop_table('id_counts')
    op.drop_index('ix_id_blocking_keys_person', table_name='id_blocking_keys')
    op.drop_table('id_blocking_keys')
