"""
How much the built-in registry and repository hold, for ``aiguillage status``:
one COUNT per table and the repository's total size, read in one go.

test-case-name: tests.e2e.test_shared_record
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from xds.registry import tables


def shared_record_counts(conn: Any) -> dict[str, int]:
    """Registered DocumentEntries, SubmissionSets and Folders; stored documents and bytes."""
    counted = {name: conn.execute(select(func.count()).select_from(table)).scalar() or 0
               for name, table in (("document_entries", tables.document_entries),
                                   ("submission_sets", tables.submission_sets),
                                   ("folders", tables.folders),
                                   ("documents", tables.documents))}
    total = conn.execute(select(func.sum(tables.documents.c.size))).scalar()
    return {**counted, "document_bytes": int(total or 0)}
