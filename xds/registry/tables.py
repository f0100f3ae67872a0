"""
The registry's and repository's tables, in SQLAlchemy Core.

Each XDS object keeps the columns the stored queries filter on, and its full
ebRIM XML (``rim:RegistryObjectList`` holding the object and, for packages,
its classification) so that a LeafClass answer is the object as registered,
with only ``status`` taken from the row. Multi-valued query attributes
(eventCodeList, confidentialityCode, authorPerson) are rows of
``xds_document_values`` so that a query matches them through an index. Codes
are kept as ``code^^scheme``, the form stored query parameters use.

The tables have their own ``MetaData``: they belong to xds, not to the store's
message tables, and migration 0007 creates them.

test-case-name: tests.xds.test_registry_register
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Column, Index, LargeBinary, MetaData, String, Table,
)

registry_metadata = MetaData()

UUID = String(64)       # urn:uuid:... (45 characters)
OID = String(128)       # uniqueIds are OIDs (64 max) or OID^extension
CODE = String(255)      # code^^scheme
DTM = String(14)        # YYYYMMDDhhmmss, compared as text (shorter values are prefixes)

submission_sets = Table(
    "xds_submission_sets", registry_metadata,
    Column("entry_uuid", UUID, primary_key=True),
    Column("unique_id", OID, nullable=False, unique=True),
    Column("patient_id", String(255), nullable=False),
    Column("source_id", OID, nullable=False),
    Column("submission_time", DTM, nullable=False),
    Column("content_type_code", CODE, nullable=True),
    Column("status", String(64), nullable=False),
    Column("author_person", String(255), nullable=True),
    Column("xml", LargeBinary, nullable=False),
)
Index("ix_xds_submission_sets_patient", submission_sets.c.patient_id, submission_sets.c.status)

document_entries = Table(
    "xds_document_entries", registry_metadata,
    Column("entry_uuid", UUID, primary_key=True),
    Column("unique_id", OID, nullable=False, unique=True),
    Column("patient_id", String(255), nullable=False),
    Column("status", String(64), nullable=False),
    Column("object_type", UUID, nullable=False),
    Column("class_code", CODE, nullable=True),
    Column("type_code", CODE, nullable=True),
    Column("practice_setting_code", CODE, nullable=True),
    Column("healthcare_facility_type_code", CODE, nullable=True),
    Column("format_code", CODE, nullable=True),
    Column("creation_time", DTM, nullable=True),
    Column("service_start_time", DTM, nullable=True),
    Column("service_stop_time", DTM, nullable=True),
    Column("repository_unique_id", OID, nullable=True),
    Column("hash", String(40), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("mime_type", String(255), nullable=False),
    Column("xml", LargeBinary, nullable=False),
)
Index("ix_xds_document_entries_patient", document_entries.c.patient_id,
      document_entries.c.status, document_entries.c.creation_time)

# One row per value of a multi-valued query attribute of a DocumentEntry.
document_values = Table(
    "xds_document_values", registry_metadata,
    Column("entry_uuid", UUID, primary_key=True),
    Column("name", String(32), primary_key=True),   # eventCodeList, confidentialityCode, ...
    Column("value", String(255), primary_key=True),
)
Index("ix_xds_document_values_lookup", document_values.c.name, document_values.c.value)

folders = Table(
    "xds_folders", registry_metadata,
    Column("entry_uuid", UUID, primary_key=True),
    Column("unique_id", OID, nullable=False, unique=True),
    Column("patient_id", String(255), nullable=False),
    Column("status", String(64), nullable=False),
    Column("last_update_time", DTM, nullable=True),
    Column("xml", LargeBinary, nullable=False),
)
Index("ix_xds_folders_patient", folders.c.patient_id, folders.c.status)

associations = Table(
    "xds_associations", registry_metadata,
    Column("entry_uuid", UUID, primary_key=True),
    Column("association_type", String(128), nullable=False),
    Column("source", UUID, nullable=False),
    Column("target", UUID, nullable=False),
    Column("status", String(64), nullable=False),
    Column("xml", LargeBinary, nullable=False),
)
Index("ix_xds_associations_source", associations.c.source)
Index("ix_xds_associations_target", associations.c.target)

# The repository: a document's bytes by its uniqueId.
documents = Table(
    "xds_documents", registry_metadata,
    Column("unique_id", OID, primary_key=True),
    Column("repository_unique_id", OID, nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("hash", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

OBJECT_TABLES = (submission_sets, document_entries, folders, associations)
