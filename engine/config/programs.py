"""
A channel's mappings, read and compiled at load for :mod:`engine.config.loader`: its code
tables, the mapping files its steps include, its ``filters:`` and ``steps:`` compiled into
:class:`mappings.steps.Program` objects, the ``route`` steps checked against its destinations,
and the structural validator's presence. Every mistake goes to ``problems`` at its file and
line, with the others.

test-case-name: tests.test_channel_mappings
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.config.schema import (
    Problems, Where, describe, did_you_mean, item_position, key_position)
from engine.config.stepspath import import_hint
from engine.config.yamlsource import YAMLMapping

__all__ = ["channel_programs", "check_routes", "check_validator", "compile_program",
           "read_channel_includes", "read_tables"]


def read_tables(root: YAMLMapping, values: dict, where: Where, problems: Problems,
            inputs: list[str]) -> dict:
    """The channel's code tables, each file read once; a broken file is reported by line.

    Each table file's path is added to ``inputs``."""
    from engine.config.tablefiles import load_table, table_entries

    tables = {}
    for name, path, _ in table_entries(root, values, where, problems):
        inputs.append(path)
        table = load_table(path, name, problems)
        if table is not None:
            tables[name] = table
    return tables


def read_channel_includes(root: YAMLMapping, where: Where, tables: dict, problems: Problems,
              inputs: list[str]) -> Any:
    """The mapping files the channel's steps include, read; their tables join ``tables``.

    The mapping files and their table files are added to ``inputs``."""
    from engine.config.includes import channel_table_files, read_includes

    lists = [(root.get("steps"), where.child("steps", root.key_position("steps")))]
    items = root.get("destinations")
    if isinstance(items, list):
        here = where.child("destinations", root.key_position("destinations"))
        lists += [(item.get("steps"), here.item(index, item_position(items, index)).child(
                       "steps", key_position(item, "steps")))
                  for index, item in enumerate(items) if isinstance(item, Mapping)]
    table_files = channel_table_files(root, where)
    found = read_includes(lists, tables, table_files, problems)
    inputs.extend(found.files)
    inputs.extend(path for path, _ in table_files.values())
    return found


def compile_program(kind: str, raw: Any, at: Where, tables: Mapping, problems: Problems,
             includes: Any = None) -> Any:
    """``raw`` (a YAML list, with its positions) compiled; None after reporting problems."""
    from mappings.steps import StepsError, compile_filters, compile_steps

    try:
        if kind == "filters":
            return compile_filters(raw, file=at.file, field=at.field)
        return compile_steps(raw, file=at.file, tables=tables, field=at.field,
                             include=includes.resolve if includes is not None else None)
    except StepsError as error:
        for problem in error.problems:
            where = Where(problem.file or at.file, problem.line or at.line, 0,
                          problem.field or at.field)
            problems.add(where, problem.message + import_hint(problem.module))
    return None


def channel_programs(root: YAMLMapping, values: dict, where: Where, tables: Mapping,
                      problems: Problems, includes: Any = None) -> tuple[Any, Any]:
    """The compiled ``filters:`` and ``steps:`` of the channel (None when absent or bad)."""
    programs = []
    for kind in ("filters", "steps"):
        raw = root.get(kind)
        if values.get(kind) is None or not isinstance(raw, list):
            programs.append(None)  # absent, or not a list: validate_section said so
            continue
        at = where.child(kind, root.key_position(kind))
        programs.append(compile_program(kind, raw, at, tables, problems, includes) if raw else None)
    return programs[0], programs[1]


def check_routes(root: YAMLMapping, where: Where, destinations: tuple,
                  problems: Problems, includes: Any = None) -> None:
    """A ``route`` step must name destinations of this channel.

    Read from the YAML itself, not the compiled programs, so that it is reported even when
    another mistake in the same list keeps it from compiling.
    """
    known = {d.name for d in destinations if d.name}
    lists = [(root.get("steps"), where.child("steps", root.key_position("steps")))]
    items = root.get("destinations")
    if isinstance(items, list):
        here = where.child("destinations", root.key_position("destinations"))
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                at = here.item(index, item_position(items, index))
                lists.append((item.get("steps"), at.child("steps", key_position(item, "steps"))))
    for steps, at in lists:
        for name, place in _route_names(steps, at, includes):
            if name not in known:
                problems.add(place, f"route names the destination {describe(name)}, which "
                                    f"this channel does not have{did_you_mean(name, known)}; "
                                    f"its destinations: {', '.join(sorted(known)) or 'none'}")


def _route_names(steps: Any, where: Where, includes: Any = None, seen: frozenset = frozenset()):
    """(name, place) of every destination a ``route`` step names, for-each bodies and
    included mapping files included."""
    from engine.config.includes import steps_in

    for step, at in steps_in(steps, where):
        names = step.get("route")
        if isinstance(names, str):
            names = [names]
        if isinstance(names, list):
            place = at.child("route", key_position(step, "route"))
            yield from ((name, place) for name in names if isinstance(name, str))
        text = step.get("include")
        found = includes.step_lists(text, where.file) if includes and isinstance(text, str) \
            else None
        if found is not None and found[1].file not in seen:
            yield from _route_names(found[0], found[1], includes, seen | {where.file})


def check_validator(root: YAMLMapping, where: Where, problems: Problems) -> None:
    """``validation: structure`` needs hl7apy: say so at load, not per message."""
    try:
        import hl7apy.parser  # noqa: F401
    except ImportError:
        problems.add(where.child("validation", root.key_position("validation")),
                     "validation: structure needs the hl7apy package, which is not installed")
