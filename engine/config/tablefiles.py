"""
The ``tables:`` section of a channel or mapping file: which code table files it names, read.

A channel and a mapping file declare their tables the same way, so both read them here: each
entry must be the path of a table file, relative to the file that names it, and a table file
with mistakes has them reported at their own file and line, with every other problem of the
configuration (:mod:`mappings.tables` does the parsing).

test-case-name: tests.config.test_includes
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

from engine.config.schema import Problems, Where, describe, key_position
from mappings.tables import (
    CodeTable, TableError, TableErrors, check_table_extension, parse_table_bytes)


def table_entries(root: Mapping, values: Mapping, where: Where,
                  problems: Problems) -> Iterator[tuple[str, str, Where]]:
    """(name, absolute path, place) of each table ``root``'s ``tables:`` names; an entry that
    is not a path is reported and skipped."""
    raw = root.get("tables")
    if not values.get("tables") or not isinstance(raw, Mapping):
        return
    here = where.child("tables", key_position(root, "tables"))
    for name, file in raw.items():
        item_at = here.child(name, key_position(raw, name))
        if not isinstance(file, str) or not file.strip():
            problems.add(item_at, f"expected the path of a .csv or .yaml table file, "
                                  f"got {describe(file)}")
            continue
        yield str(name), os.path.normpath(os.path.join(where.base_dir,
                                                       os.path.expanduser(file))), item_at


def read_table_file(path: str | os.PathLike, **options: Any) -> CodeTable:
    """Read and parse the table file at ``path`` (options: see
    :func:`mappings.tables.parse_table_bytes`); raise ``TableErrors`` naming file and line."""
    file = os.fspath(path)
    check_table_extension(file)
    try:
        with open(file, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise TableErrors([TableError(file, 0, f"cannot read the file: {exc.strerror or exc}")]
                          ) from None
    return parse_table_bytes(data, file, **options)


def load_table(path: str, name: str, problems: Problems) -> Any:
    """The code table in ``path``, or None with its mistakes added to ``problems``."""
    try:
        return read_table_file(path, name=name)
    except TableErrors as errors:
        for error in errors.errors:
            problems.add(Where(error.file, error.line, 0), error.message)
        return None
