"""
How ``aiguillage xds`` shows documents: a rich table, or JSON; warnings of a successful
RegistryResponse on standard error.

test-case-name: tests.xds.test_xds_cli
"""
from __future__ import annotations

from typing import Any

import click


def _code(code: Any) -> str:
    if code is None:
        return ""
    return f"{code.code} {code.display}".strip() if code.display else code.code


def entry_dict(entry: Any) -> dict:
    """What a query lists of one DocumentEntry, as JSON."""
    return {"unique_id": entry.unique_id, "entry_uuid": entry.entry_uuid,
            "title": entry.title, "status": entry.availability_status.rsplit(":", 1)[-1],
            "type_code": entry.type_code and f"{entry.type_code.code}^^{entry.type_code.scheme}",
            "class_code": entry.class_code and
            f"{entry.class_code.code}^^{entry.class_code.scheme}",
            "creation_time": entry.creation_time, "mime_type": entry.mime_type,
            "size": entry.size, "hash": entry.hash, "patient_id": entry.patient_id,
            "repository_unique_id": entry.repository_unique_id}


def documents_table(documents: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("uniqueId", "title", "type", "created", "status", "size", "repository",
                  box=None, show_edge=False)
    for entry in documents:
        table.add_row(entry.unique_id, entry.title, _code(entry.type_code),
                      entry.creation_time, entry.availability_status.rsplit(":", 1)[-1],
                      entry.size, entry.repository_unique_id)
    Console(width=240, soft_wrap=True).print(table)


def warnings(response: Any) -> None:
    """The warnings a successful RegistryResponse carries, on standard error."""
    for error in response.errors:
        click.echo(f"warning: {error.error_code}: {error.code_context}", err=True)
