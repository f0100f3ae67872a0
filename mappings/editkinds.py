"""
What the ``steps:`` language's editing operations compile to: ``set``, ``copy``, ``move``,
``delete``, ``add-segment``, ``translate`` and ``format``, each checked once at load by a
builder that reports its mistakes to the :class:`~mappings.stepcompiler.StepCompiler` and
returns the prebuilt step of :mod:`mappings.stepkinds` (None when refused). The language is
documented in :mod:`mappings.steps`.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from mappings import formats
from mappings.formats import TEXT_FORMATS, FormatError
from mappings.paths import EVERY, MAX_NUMBER_DIGITS
from mappings.scopes import Access
from mappings.stepcompiler import BAD, StepCompiler
from mappings.stepkinds import (
    AddSegmentStep, CopyStep, DeleteStep, FormatStep, SetStep, Step, TranslateStep,
)
from mappings.stepproblems import _did_you_mean, _line

__all__ = ["build_add_segment", "build_copy", "build_delete", "build_format", "build_move",
           "build_set", "build_translate"]

ON_UNKNOWN = ("error", "keep", "default", "empty")


def build_set(compiler: StepCompiler, item: Mapping, field: str, line: int,
              scope: tuple) -> Step | None:
    """``set``: the target path and the value, or the path it is read from."""
    target = compiler.value_access(item, "set", field, scope)
    has_value, has_source = "value" in item, "value-from" in item
    if has_value == has_source:
        compiler.problem(_line(item, "set"), field, "set needs 'value' or 'value-from' "
                                                "(one of them)")
        return None
    value = source = None
    if has_value:
        value = compiler.text(item["value"], _line(item, "value"),
                          field.rsplit(".", 1)[0] + ".value")
        if value is None:
            return None
    else:
        source = compiler.value_access(item, "value-from", field, scope)
    return compiler.make(SetStep, line, field, target=target, value=value, source=source)


def build_copy(compiler: StepCompiler, item: Mapping, field: str, line: int,
               scope: tuple, move=False) -> Step | None:
    """``copy`` (``move`` with ``move``): whole nodes, a [*] source to a target with one [*]."""
    kind = "move" if move else "copy"
    source = compiler.value_access(item, kind, field, scope)
    target = compiler.value_access(item, "to", field, scope)
    if isinstance(source, Access) and isinstance(target, Access) and any(
            index is EVERY for access in (source, target) for _, index in access.path.groups):
        compiler.problem(_line(item, kind), field,
                     f"{kind} takes no [*] on a group: loop over the group with for-each "
                     "and copy inside it")
        return None
    if isinstance(source, Access) and isinstance(target, Access):
        stars = (target.path.occurrence is EVERY) + (target.path.repetition is EVERY)
        many = source.path.occurrence is EVERY or source.path.repetition is EVERY
        if many and stars != 1:
            compiler.problem(_line(item, "to"), field.rsplit(".", 1)[0] + ".to",
                         "a source with [*] needs a target with exactly one [*], "
                         "such as OBX[*]-4")
            return None
        if not many and stars:
            compiler.problem(_line(item, "to"), field.rsplit(".", 1)[0] + ".to",
                         "a single source cannot be copied to a [*] target")
            return None
    return compiler.make(CopyStep, line, field, source=source, target=target, move=move)


def build_move(compiler: StepCompiler, item: Mapping, field: str, line: int,
               scope: tuple) -> Step | None:
    """``move``: ``copy``, then ``delete`` the source."""
    return build_copy(compiler, item, field, line, scope, move=True)


def build_delete(compiler: StepCompiler, item: Mapping, field: str, line: int,
                 scope: tuple) -> Step | None:
    """``delete``: a field, repetition, component, or indexed segments and groups."""
    target = compiler.access(item, "delete", field, scope)
    if isinstance(target, Access) and target.path.segment == "MSH" \
            and target.segment_only:
        compiler.problem(_line(item, "delete"), field, "MSH cannot be deleted")
        return None
    if isinstance(target, Access) and target.segment_only and not target.bound \
            and target.path.occurrence is None:
        # "delete: NTE" reads as "the NTE segments" but names the first one only.
        path, what = target.path, "group" if target.path.names_group else "segment"
        one, every = (str(replace(path, occurrence=index)) for index in (1, EVERY))
        compiler.problem(_line(item, "delete"), field,
                     f"{target.text} names the first {path.segment} {what} only: write "
                     f"{one} for the first one or {every} for every one")
        return None
    return compiler.make(DeleteStep, line, field, target=target)


def build_add_segment(compiler: StepCompiler, item: Mapping, field: str, line: int,
                      scope: tuple) -> Step | None:
    """``add-segment``: the new segment's name, where it goes and its fields."""
    name = item["add-segment"]
    bad = False
    if not (isinstance(name, str) and len(name) == 3 and name.isascii()
            and name.isalnum() and name.isupper() and name[0].isalpha()) or name == "MSH":
        compiler.problem(_line(item, "add-segment"), field,
                     f"expected a segment name such as ZBE (not MSH), not {name!r}")
        bad = True
    after = compiler.access(item, "after", field, scope, optional=True)
    if isinstance(after, Access) and not after.segment_only:
        compiler.problem(_line(item, "after"), field.rsplit(".", 1)[0] + ".after",
                     f"after needs a segment such as PV1 or OBX[2], not {after.text}")
        after = BAD
    fields = []
    spec = item.get("fields", {})
    where = field.rsplit(".", 1)[0] + ".fields"
    if not isinstance(spec, Mapping):
        compiler.problem(_line(item, "fields"), where, "expected {field number: value}")
        bad = True
    else:
        for number, value in spec.items():
            line_ = _line(spec, number) or _line(item, "fields")
            if isinstance(number, str) and number.isascii() and number.isdigit():
                number = int(number) if len(number) <= MAX_NUMBER_DIGITS else number
            if type(number) is not int or not 0 < number < 10 ** MAX_NUMBER_DIGITS:
                compiler.problem(line_, where, f"expected a field number (1, 2...), "
                                           f"not {number!r}")
                bad = True
                continue
            text = compiler.text(value, line_, f"{where}.{number}")
            if text is None:
                bad = True
                continue
            fields.append((number, text))
    if bad:
        return None
    return compiler.make(AddSegmentStep, line, field, name=name, after=after,
                      fields=tuple(sorted(fields)))


def build_translate(compiler: StepCompiler, item: Mapping, field: str, line: int,
                    scope: tuple) -> Step | None:
    """``translate``: the table, the targets and what to do with an unknown code."""
    base = field.rsplit(".", 1)[0]
    source = compiler.value_access(item, "translate", field, scope)
    target = compiler.value_access(item, "to", field, scope, optional=True)
    display = compiler.value_access(item, "display-to", field, scope, optional=True)
    system = compiler.value_access(item, "system-to", field, scope, optional=True)
    name = item["table"]
    table = compiler.tables.get(name) if isinstance(name, str) else None
    if table is None:
        known = ", ".join(sorted(compiler.tables)) or "none"
        compiler.problem(_line(item, "table"), base + ".table",
                     f"unknown table {name!r}{_did_you_mean(name, compiler.tables)}; "
                     f"the tables are: {known}")
    else:
        compiler.tables_used.add(name)
    policy = item.get("on-unknown", "error")
    default = None
    if policy not in ON_UNKNOWN:
        compiler.problem(_line(item, "on-unknown"), base + ".on-unknown",
                     f"expected one of {', '.join(ON_UNKNOWN)}, not {policy!r}"
                     f"{_did_you_mean(policy, ON_UNKNOWN)}")
        table = None
    elif (policy == "default") != ("default" in item):
        compiler.problem(_line(item, "on-unknown" if policy == "default" else "default"),
                     base + ".default",
                     "'on-unknown: default' and 'default: CODE' go together")
        table = None
    elif policy == "default":
        default = compiler.text(item["default"], _line(item, "default"), base + ".default")
        if default is None:
            table = None
    if isinstance(source, Access) and source.many \
            and any(key in item for key in ("to", "display-to", "system-to")):
        compiler.problem(_line(item, "translate"), field,
                     "a [*] path is translated in place only; use for-each to write "
                     "each code elsewhere")
        return None
    if table is None:
        return None
    return compiler.make(TranslateStep, line, field, source=source, table=table,
                      target=target, display=display, system=system,
                      on_unknown=policy, default=default)


def build_format(compiler: StepCompiler, item: Mapping, field: str, line: int,
                 scope: tuple) -> Step | None:
    """``format``: the transform of :mod:`mappings.formats`, built with its parameters."""
    base = field.rsplit(".", 1)[0]
    source = compiler.value_access(item, "format", field, scope)
    target = compiler.value_access(item, "to", field, scope, optional=True)
    name = item["with"]
    params = {key: value for key, value in item.items()
              if key not in ("format", "with", "when", "to")}
    try:
        transform = formats.build_format(name, params)
    except FormatError as error:
        compiler.problem(_line(item, "with"), base + ".with", error.message)
        return None
    except TypeError as error:
        compiler.problem(_line(item, "with"), base + ".with", f"format {name!r}: {error}")
        return None
    if isinstance(source, Access) and target is not None and target is not BAD \
            and source.many:
        compiler.problem(_line(item, "to"), base + ".to",
                     "a [*] path is formatted in place only")
        return None
    return compiler.make(FormatStep, line, field, source=source, transform=transform,
                      target=target, name=name, text_only=name in TEXT_FORMATS)
