"""xds registry: the built-in XDS.b registry and repository tables

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:30:00

New tables only (xds/registry/tables.py), so the upgrade rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

UUID = sa.String(64)
OID = sa.String(128)
CODE = sa.String(255)
DTM = sa.String(14)


def upgrade() -> None:
    op.create_table(
        'xds_submission_sets',
        sa.Column('entry_uuid', UUID, primary_key=True),
        sa.Column('unique_id', OID, nullable=False, unique=True),
        sa.Column('patient_id', sa.String(255), nullable=False),
        sa.Column('source_id', OID, nullable=False),
        sa.Column('submission_time', DTM, nullable=False),
        sa.Column('content_type_code', CODE, nullable=True),
        sa.Column('status', sa.String(64), nullable=False),
        sa.Column('author_person', sa.String(255), nullable=True),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
    )
    op.create_index('ix_xds_submission_sets_patient', 'xds_submission_sets',
                    ['patient_id', 'status'])
    op.create_table(
        'xds_document_entries',
        sa.Column('entry_uuid', UUID, primary_key=True),
        sa.Column('unique_id', OID, nullable=False, unique=True),
        sa.Column('patient_id', sa.String(255), nullable=False),
        sa.Column('status', sa.String(64), nullable=False),
        sa.Column('object_type', UUID, nullable=False),
        sa.Column('class_code', CODE, nullable=True),
        sa.Column('type_code', CODE, nullable=True),
        sa.Column('practice_setting_code', CODE, nullable=True),
        sa.Column('healthcare_facility_type_code', CODE, nullable=True),
        sa.Column('format_code', CODE, nullable=True),
        sa.Column('creation_time', DTM, nullable=True),
        sa.Column('service_start_time', DTM, nullable=True),
        sa.Column('service_stop_time', DTM, nullable=True),
        sa.Column('repository_unique_id', OID, nullable=True),
        sa.Column('hash', sa.String(40), nullable=True),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.Column('mime_type', sa.String(255), nullable=False),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
    )
    op.create_index('ix_xds_document_entries_patient', 'xds_document_entries',
                    ['patient_id', 'status', 'creation_time'])
    op.create_table(
        'xds_document_values',
        sa.Column('entry_uuid', UUID, primary_key=True),
        sa.Column('name', sa.String(32), primary_key=True),
        sa.Column('value', sa.String(255), primary_key=True),
    )
    op.create_index('ix_xds_document_values_lookup', 'xds_document_values', ['name', 'value'])
    op.create_table(
        'xds_folders',
        sa.Column('entry_uuid', UUID, primary_key=True),
        sa.Column('unique_id', OID, nullable=False, unique=True),
        sa.Column('patient_id', sa.String(255), nullable=False),
        sa.Column('status', sa.String(64), nullable=False),
        sa.Column('last_update_time', DTM, nullable=True),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
    )
    op.create_index('ix_xds_folders_patient', 'xds_folders', ['patient_id', 'status'])
    op.create_table(
        'xds_associations',
        sa.Column('entry_uuid', UUID, primary_key=True),
        sa.Column('association_type', sa.String(128), nullable=False),
        sa.Column('source', UUID, nullable=False),
        sa.Column('target', UUID, nullable=False),
        sa.Column('status', sa.String(64), nullable=False),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
    )
    op.create_index('ix_xds_associations_source', 'xds_associations', ['source'])
    op.create_index('ix_xds_associations_target', 'xds_associations', ['target'])
    op.create_table(
        'xds_documents',
        sa.Column('unique_id', OID, primary_key=True),
        sa.Column('repository_unique_id', OID, nullable=False),
        sa.Column('mime_type', sa.String(255), nullable=False),
        sa.Column('hash', sa.String(40), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    for table in ('xds_documents', 'xds_associations', 'xds_folders', 'xds_document_values',
                  'xds_document_entries', 'xds_submission_sets'):
        op.drop_table(table)
