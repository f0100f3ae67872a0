"""
Mapping files: the ``include:`` steps of a channel, read once when the channel is loaded.

A mapping file holds a ``steps:`` list (and optionally ``tables:`` and a ``description:``)
that several channels, or several destinations of one channel, share::

    # config/mappings/pam-fr-to-practice.yaml
    description: IHE PAM France ADT, normalised for the practice system
    tables:
      sex-practice: ../../samples/tables/sex-hl7-to-practice.yaml
    steps:
      - translate: PID-8
        table: sex-practice

    # config/channels/adt-pam-fr.yaml
    steps:
      - include: ../mappings/pam-fr-to-practice.yaml

The language (:mod:`mappings.steps`) does no file I/O: this module reads every file a
channel includes, directly or through other mapping files, BEFORE its steps are compiled, so
that the tables the files define can be merged with the channel's (a name defined twice with
different files is an error) and every problem is reported by ``check-config`` with its own
file and line. :meth:`MappingFiles.resolve` then hands the compiler each file's parsed
``steps:`` list; the compiler compiles it inline, in place of the ``include:`` step, and
reports include cycles. A path is relative to the directory of the file holding the step.
Each file is read once per channel load, however many times it is included.

test-case-name: tests.config.test_includes
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from engine.config.schema import (
    Problems, Section, Where, describe, item_position, key_position, read_top_mapping,
    top_where, validate_section)
from engine.interfaces import OptionSpec
from engine.config.tablefiles import load_table, table_entries
from mappings.steps import IncludedSteps

MAPPING_FILE_SECTION = Section(
    (OptionSpec("description", "str", default=""),
     OptionSpec("tables", "mapping", help="code tables: name -> CSV or YAML file"),
     OptionSpec("steps", "list", required=True, help="the mapping steps")))


@dataclass(frozen=True)
class _MappingFile:
    """One mapping file as read: its ``steps:`` list and where that list is written."""

    file: str
    steps: Any  # the YAML list, or None when the file has no usable one (already reported)
    steps_at: Where


class MappingFiles:
    """Every mapping file one channel includes, by normalised path."""

    def __init__(self) -> None:
        self.files: dict[str, _MappingFile] = {}
        self.missing: dict[str, str] = {}  # path -> why it cannot be read

    @staticmethod
    def path_of(text: str, from_file: str) -> str:
        """The file ``include: text`` names when written in ``from_file``."""
        return os.path.normpath(os.path.join(os.path.dirname(from_file),
                                             os.path.expanduser(text)))

    def resolve(self, text: str, from_file: str) -> IncludedSteps | None:
        """The compiler's resolver: the file's steps, None if already reported, or raise
        ``LookupError`` naming the file that cannot be read."""
        path = self.path_of(text, from_file)
        if path in self.missing:
            raise LookupError(self.missing[path])
        found = self.files.get(path)
        if found is None or found.steps is None:
            return None
        return IncludedSteps(found.file, found.steps, found.steps_at.field)

    def step_lists(self, text: str, from_file: str) -> tuple[Any, Where] | None:
        """The included file's ``steps:`` list and its place, for checks that walk the YAML."""
        found = self.files.get(self.path_of(text, from_file))
        if found is None or found.steps is None:
            return None
        return found.steps, found.steps_at


def read_includes(lists: list[tuple[Any, Where]], tables: dict, table_files: dict[str, Where],
                  problems: Problems) -> MappingFiles:
    """Read every mapping file the step ``lists`` include, directly or not.

    ``lists`` are the (YAML steps list, its place) of a channel and of its destinations;
    ``tables`` the channel's tables (name -> CodeTable), to which the files' tables are
    added; ``table_files`` the file and place of each table already defined (name -> (path,
    Where)), to refuse one name given two files. Problems go to ``problems``.
    """
    found = MappingFiles()
    pending = [(text, at) for steps, at in lists for text, at in _includes_in(steps, at)]
    while pending:
        text, at = pending.pop(0)
        path = found.path_of(text, at.file)
        if path in found.files or path in found.missing:
            continue
        if not os.path.isfile(path):
            found.missing[path] = (f"no mapping file {describe(text)} (looked for {path})"
                                   if not os.path.exists(path) else
                                   f"{path} is not a file")
            continue
        mapping_file = _read(path, tables, table_files, problems)
        found.files[path] = mapping_file
        if mapping_file.steps is not None:
            pending.extend(_includes_in(mapping_file.steps, mapping_file.steps_at))
    return found


def _read(path: str, tables: dict, table_files: dict, problems: Problems) -> _MappingFile:
    root = read_top_mapping(path, problems)
    if root is None:
        return _MappingFile(path, None, Where(path))
    where = top_where(path, root)
    values = validate_section(root, MAPPING_FILE_SECTION, where, problems)
    _add_tables(root, values, where, tables, table_files, problems)
    steps = root.get("steps")
    steps_at = where.child("steps", root.key_position("steps"))
    return _MappingFile(path, steps if isinstance(steps, list) else None, steps_at)


def _add_tables(root: Mapping, values: dict, where: Where, tables: dict, table_files: dict,
                problems: Problems) -> None:
    """Load the file's tables into ``tables``; a name with another file is an error."""
    for name, path, item_at in table_entries(root, values, where, problems):
        if name in table_files:
            earlier_path, earlier_at = table_files[name]
            if earlier_path != path:
                problems.add(item_at, f'table "{name}" is already defined by '
                                      f"{earlier_at.file}:{earlier_at.line} with another "
                                      f"file ({earlier_path})")
            continue
        table_files[name] = (path, item_at)
        table = load_table(path, name, problems)
        if table is not None:
            tables[name] = table


def channel_table_files(root: Mapping, where: Where) -> dict:
    """name -> (absolute path, place) of the tables a channel file's ``tables:`` names."""
    raw = root.get("tables")
    if not isinstance(raw, Mapping):
        return {}
    here = where.child("tables", key_position(root, "tables"))
    return {str(name): (os.path.normpath(os.path.join(where.base_dir, os.path.expanduser(file))),
                        here.child(name, key_position(raw, name)))
            for name, file in raw.items() if isinstance(file, str) and file.strip()}


def steps_in(steps: Any, where: Where) -> Iterator[tuple[Mapping, Where]]:
    """(step, place) of every step of a steps list, ``for-each`` bodies included, in order."""
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        at = where.item(index, item_position(steps, index))
        yield step, at
        yield from steps_in(step.get("steps"), at.child("steps", key_position(step, "steps")))


def _includes_in(steps: Any, where: Where) -> Iterator[tuple[str, Where]]:
    """(text, place) of every ``include:`` in a steps list, ``for-each`` bodies included."""
    for step, at in steps_in(steps, where):
        text = step.get("include")
        if isinstance(text, str) and text.strip():
            yield text.strip(), at.child("include", key_position(step, "include"))


__all__ = ["MappingFiles", "MAPPING_FILE_SECTION", "channel_table_files", "read_includes"]
