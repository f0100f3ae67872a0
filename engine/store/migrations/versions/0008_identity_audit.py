"""identity audit and search: id_audit, id_names, a review item without candidate

Revision ID: 0008_identity_audit
Revises: 0007
Create Date: 2026-12-06 18:20:00

* ``id_audit``: every identity query, disclosure and feed (identity/store/audit.py).
* ``id_names`` (and an index on ``id_traits.birth_date``): the folded family and first names the PDQ search reads by prefix
  (identity/store/names.py); filled here from the traits already stored, with the
  same fold the code uses, so that an upgraded index finds its existing persons.
* ``id_review.candidate_id`` becomes nullable: a sender's own doubt about an identity
  (``review_reasons``) opens an item even when the matcher proposes nobody.
"""
import json

from alembic import op
import sqlalchemy as sa

from identity.matching.normalise import fold


revision = '0008_identity_audit'
down_revision = '0007'
branch_labels = None
depends_on = None

FOLDED = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")
BATCH = 5000


def upgrade() -> None:
    op.create_table(
        'id_audit',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True,
                  autoincrement=True),
        sa.Column('recorded_at', sa.Float(), nullable=False),
        sa.Column('transaction', sa.String(16), nullable=False),
        sa.Column('answered_at', sa.Text(), nullable=False),
        sa.Column('requester', sa.Text(), nullable=False),
        sa.Column('facility', sa.Text(), nullable=False),
        sa.Column('peer', sa.Text(), nullable=False),
        sa.Column('control_id', sa.Text(), nullable=False),
        sa.Column('query_tag', sa.Text(), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=False),
        sa.Column('outcome', sa.String(8), nullable=False),
        sa.Column('persons', sa.Text(), nullable=False),
        sa.Column('identifiers', sa.Text(), nullable=False),
    )
    op.create_index('ix_id_audit_transaction', 'id_audit', ['transaction', 'id'])
    names = op.create_table(
        'id_names',
        sa.Column('kind', sa.String(1), nullable=False),
        sa.Column('folded', FOLDED, nullable=False),
        sa.Column('person_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('kind', 'folded', 'person_id'),
    )
    op.create_index('ix_id_names_person', 'id_names', ['person_id', 'kind', 'folded'])
    op.create_index('ix_id_traits_birth_date', 'id_traits', ['birth_date'])
    with op.batch_alter_table('id_review') as batch:
        batch.alter_column('candidate_id', existing_type=sa.BigInteger(), nullable=True)
    _fill_names(names)


def _fill_names(names: sa.Table) -> None:
    """One row per distinct folded name of each stored person (the code's rule)."""
    conn = op.get_bind()
    traits = sa.table('id_traits', sa.column('person_id'), sa.column('birth_name'),
                      sa.column('used_name'), sa.column('first_names'))
    last = 0
    while True:
        page = conn.execute(sa.select(traits).where(traits.c.person_id > last)
                            .order_by(traits.c.person_id).limit(BATCH)).all()
        if not page:
            return
        last = page[-1].person_id
        rows = []
        for row in page:
            family = {fold(n) for n in (row.birth_name, row.used_name) if n} - {""}
            given = {fold(n) for n in json.loads(row.first_names or "[]")} - {""}
            rows += [{"kind": "F", "folded": f[:128], "person_id": row.person_id} for f in family]
            rows += [{"kind": "G", "folded": g[:128], "person_id": row.person_id} for g in given]
        if rows:
            conn.execute(names.insert(), rows)


def downgrade() -> None:
    op.execute("DELETE FROM id_review WHERE candidate_id IS NULL")  # no place for them at 0007
    with op.batch_alter_table('id_review') as batch:
        batch.alter_column('candidate_id', existing_type=sa.BigInteger(), nullable=False)
    op.drop_index('ix_id_traits_birth_date', table_name='id_traits')
    op.drop_index('ix_id_names_person', table_name='id_names')
    op.drop_table('id_names')
    op.drop_index('ix_id_audit_transaction', table_name='id_audit')
    op.drop_table('id_audit')
