"""consent: patients' oppositions to sharing, with their history

Revision ID: 0009_consent
Revises: 0008_identity_audit
Create Date: 2026-12-06 18:30:00

A new table (engine/store/consent.py): nothing existing is rewritten.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_consent'
down_revision = '0008_identity_audit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consent_oppositions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False,
                  autoincrement=True),
        sa.Column('domain', sa.String(length=128), nullable=False),
        sa.Column('value', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('since', sa.Float(), nullable=False),
        sa.Column('cause', sa.String(length=255), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('withdrawn_at', sa.Float(), nullable=True),
        sa.Column('withdrawn_cause', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_consent_oppositions_patient', 'consent_oppositions',
                    ['domain', 'value', 'scope'])


def downgrade() -> None:
    op.drop_index('ix_consent_oppositions_patient', table_name='consent_oppositions')
    op.drop_table('consent_oppositions')
