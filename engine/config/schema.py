"""
Checking YAML mappings against tables of :class:`OptionSpec` rows, collecting every problem.

One function, :func:`validate_section`, validates both the engine's own sections (store, retry,
ordering...) and the type-specific options a connector declares in its ``ConnectorSpec``: a new
section or a new connector option is one more row in a table, never more parsing code.
Problems are collected rather than raised one at a time, because an engineer fixing channel
files wants the whole list in one run, each with its file, line and field. Files are read
with :mod:`engine.config.yamlsource`, so that each problem can name the line it comes from.

Value kinds (``OptionSpec.kind``):

- ``duration``: a number of seconds, or a string with one unit: ``"250ms"``, ``"5s"``, ``"2m"``,
  ``"1h"`` (a number in a string, ``"30"``, is seconds too). Loaded as float seconds.
- ``size``: a number of bytes, or a string with one unit, case-insensitive: binary ``KiB``,
  ``MiB``, ``GiB`` (powers of 1024) or decimal ``kB``, ``MB``, ``GB`` (powers of 1000), or ``B``.
  Loaded as int bytes. Decimal units are there because people write them; they mean what the
  SI says, not 1024.
- ``path``: resolved against the directory of the file it is written in (``~`` expanded),
  loaded as an absolute, normalised ``str``.
- ``str`` refuses numbers and booleans rather than converting them, since YAML has already
  changed ``on``, ``0123`` or ``1.10`` by then; the message says to quote the value.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from engine.interfaces import OptionSpec
from engine.config.yamlsource import (
    DuplicateKey, Position, YAMLMapping, YAMLSequence, YAMLSourceError, read_yaml)


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in the configuration, located for the engineer who has to fix it."""

    file: str
    line: int  # 1-based; 0 when the problem concerns the whole file
    column: int
    field: str  # dotted path such as "destinations[0].retry.max_delay"; "" for the file
    message: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{location}: {self.field}: {self.message}"
        return f"{location}: {self.message}"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists all of them, by file and line."""

    def __init__(self, problems: Iterable[ConfigProblem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.field))
        super().__init__(self.problems)  # so that the error survives pickling

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


@dataclass(frozen=True)
class Where:
    """The file, position and field path of a value being validated."""

    file: str
    line: int = 0
    column: int = 0
    field: str = ""

    def child(self, key: Any, position: Position | None = None) -> Where:
        """The place of ``key`` inside this mapping (at ``position`` if it is known)."""
        name = f"{self.field}.{key}" if self.field else str(key)
        return self._moved(name, position)

    def item(self, index: int, position: Position | None = None) -> Where:
        """The place of item ``index`` inside this sequence."""
        return self._moved(f"{self.field}[{index}]", position)

    def _moved(self, name: str, position: Position | None) -> Where:
        if position is None:
            return replace(self, field=name)
        return Where(self.file, position.line, position.column, name)

    @property
    def base_dir(self) -> str:
        """The directory relative paths written in this file are resolved against."""
        return os.path.dirname(os.path.abspath(self.file))


class Problems:
    """Collects the problems of one load; raise them together with :meth:`raise_if_any`."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, where: Where, message: str) -> None:
        self.items.append(ConfigProblem(where.file, where.line, where.column, where.field, message))

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class Invalid(ValueError):
    """A value that does not fit its option; the message is shown to the engineer."""


Check = Callable[[Any], "str | None"]  # returns what is wrong with a converted value, or None


@dataclass(frozen=True)
class Section:
    """The schema of one YAML mapping: its options and what OptionSpec cannot say.

    ``nested`` gives the section of a ``mapping`` option (validated in place) or of a ``list``
    option whose items are mappings. ``checks`` adds constraints on converted values, such as
    ranges and name patterns.
    """

    options: tuple[OptionSpec, ...]
    nested: Mapping[str, Section] = field(default_factory=dict)
    checks: Mapping[str, Check] = field(default_factory=dict)

    def extended(self, options: Iterable[OptionSpec]) -> Section:
        """This section plus ``options`` (a connector's own), built-in names winning."""
        names = {spec.name for spec in self.options}
        extra = tuple(spec for spec in options if spec.name not in names)
        return replace(self, options=self.options + extra)


def read_top_mapping(path: str, problems: Problems) -> YAMLMapping | None:
    """The top mapping of the file at ``path``, or None after reporting why there is none."""
    try:
        document = read_yaml(path)
    except YAMLSourceError as exc:
        problems.add(Where(path, exc.line, exc.column), exc.message)
        return None
    _report_duplicates(document.root, document.duplicates, Where(path), problems)
    root = document.root
    if isinstance(root, YAMLMapping):
        return root
    found = "the file is empty" if root is None else f"found {describe(root)}"
    problems.add(Where(path, 0 if root is None else 1, 0),
                 f"expected a mapping of options at the top of the file, {found}")
    return None


def top_where(path: str, root: YAMLMapping) -> Where:
    """The place of a file's top mapping."""
    return Where(path, root.position.line, root.position.column)


def _report_duplicates(root: Any, duplicates: list[DuplicateKey], where: Where,
                       problems: Problems) -> None:
    if not duplicates:
        return
    places = dict(_containers(root, where, set()))
    for duplicate in duplicates:
        owner = places.get(id(duplicate.mapping), where)
        problems.add(owner.child(duplicate.key, duplicate.position),
                     f"duplicate key {describe(duplicate.key)}, also on line "
                     f"{duplicate.first.line}; YAML would silently keep only the last value")


def _containers(value: Any, where: Where, seen: set):
    """Yield (id, place) of every mapping under ``value``, each once, to name its fields."""
    if id(value) in seen:
        return
    if isinstance(value, YAMLMapping):
        seen.add(id(value))
        yield id(value), where
        for key, item in value.items():
            yield from _containers(item, where.child(key, value.key_position(key)), seen)
    elif isinstance(value, YAMLSequence):
        seen.add(id(value))
        for index, item in enumerate(value):
            yield from _containers(item, where.item(index, value.item_position(index)), seen)


def validate_section(
    data: Any, section: Section, where: Where, problems: Problems, *, allow_unknown: bool = False
) -> dict[str, Any] | None:
    """Validate ``data`` against ``section``; return every option's value, defaults filled in.

    Problems go to ``problems``; an option that is invalid or missing is None in the result.
    Returns None if ``data`` is not a mapping at all. An explicit ``null`` counts as absent.
    """
    if not isinstance(data, Mapping):
        problems.add(where, f"expected a mapping, got {describe(data)}")
        return None
    if not allow_unknown:
        _report_unknown(data, section, where, problems)
    return {spec.name: _option_value(data, spec, section, where, problems)
            for spec in section.options}


def key_position(data: Any, key: Any) -> Position | None:
    """Where ``key`` is written in ``data``, if ``data`` came from YAML."""
    return data.key_position(key) if isinstance(data, YAMLMapping) else None


def item_position(data: Any, index: int) -> Position | None:
    """Where item ``index`` of ``data`` starts, if ``data`` came from YAML."""
    return data.item_position(index) if isinstance(data, YAMLSequence) else None


def _report_unknown(data: Mapping, section: Section, where: Where, problems: Problems) -> None:
    known = [spec.name for spec in section.options]
    for key in data:
        if key not in known:
            here = where.child(key, key_position(data, key))
            problems.add(here, f"unknown option {describe(key)}{suggestion(key, known)}")


def did_you_mean(word: Any, known: Iterable[str]) -> str:
    """A ' (did you mean "x"?)' hint for a misspelt ``word``, or "" if nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(known), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def suggestion(word: Any, known: Iterable[str]) -> str:
    """A "did you mean" hint for a misspelt ``word``, else the list of what is known."""
    known = sorted(known)
    return did_you_mean(word, known) or (f"; known: {', '.join(known)}" if known else "")


def _option_value(data: Mapping, spec: OptionSpec, section: Section, where: Where,
                  problems: Problems) -> Any:
    here = where.child(spec.name, key_position(data, spec.name))
    raw = data.get(spec.name)
    if raw is None:
        if spec.required:
            problems.add(where.child(spec.name), f'missing required option "{spec.name}"')
            return None
        raw = spec.default
        if raw is None:
            return None
    if spec.name in section.nested:
        return _nested_value(raw, spec, section.nested[spec.name], here, problems)
    try:
        value = convert(spec.kind, raw, here.base_dir)
        _check(spec, section, raw, value)
    except Invalid as exc:
        problems.add(here, str(exc))
        return None
    return value


def _nested_value(raw: Any, spec: OptionSpec, section: Section, where: Where,
                  problems: Problems) -> Any:
    if spec.kind != "list":
        return validate_section(raw, section, where, problems)
    if not isinstance(raw, list):
        problems.add(where, f"expected a list, got {describe(raw)}")
        return None
    return [validate_section(item, section, where.item(index, item_position(raw, index)),
                             problems) for index, item in enumerate(raw)]


def _check(spec: OptionSpec, section: Section, raw: Any, value: Any) -> None:
    if spec.choices and value not in spec.choices:
        listed = ", ".join(str(choice) for choice in spec.choices)
        hint = did_you_mean(value, [str(choice) for choice in spec.choices])
        raise Invalid(f"expected one of {listed}, got {describe(raw)}{hint}")
    check = section.checks.get(spec.name)
    message = check(value) if check else None
    if message:
        raise Invalid(message)


def describe(value: Any) -> str:
    """``value`` as the engineer wrote it, roughly, for error messages."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'"{shown}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def convert(kind: str, value: Any, base_dir: str) -> Any:
    """Convert a YAML ``value`` to option ``kind``, or raise :class:`Invalid`."""
    try:
        converter = _CONVERTERS[kind]
    except KeyError:
        raise ValueError(f"unknown option kind {kind!r}") from None
    return converter(value, base_dir)


def _to_str(value: Any, base_dir: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}; "
                      "put it in quotes if it is meant as text")
    return value


def _to_int(value: Any, base_dir: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a whole number, got {describe(value)}")
    return value


def _to_float(value: Any, base_dir: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"expected a number, got {describe(value)}")
    return float(value)


def _to_bool(value: Any, base_dir: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def _to_port(value: Any, base_dir: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise Invalid(f"expected a port number from 0 to 65535, got {describe(value)}")
    return value


_AMOUNT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")
_SECONDS_PER_UNIT = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES_PER_UNIT = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
                   "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: a number, or "250ms", "5s", "2m", "1h"; raise :class:`Invalid`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        match = _AMOUNT.fullmatch(value)
        if match and match.group(2) in _SECONDS_PER_UNIT:
            return float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    raise Invalid(f'expected a duration like "30s" or "5m", got {describe(value)}')


def parse_size(value: Any) -> int:
    """Bytes in ``value``: a number, or "64KiB", "16MiB", "500kB"; raise :class:`Invalid`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, str):
        match = _AMOUNT.fullmatch(value)
        if match and match.group(2).lower() in _BYTES_PER_UNIT:
            return int(float(match.group(1)) * _BYTES_PER_UNIT[match.group(2).lower()])
    raise Invalid(f'expected a size like "64KiB" or "16MiB", got {describe(value)}')


def _to_path(value: Any, base_dir: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a path, got {describe(value)}")
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def to_plain(value: Any) -> Any:
    """``value`` with YAML containers turned into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value


def _to_mapping(value: Any, base_dir: str) -> dict:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping, got {describe(value)}")
    return to_plain(value)


def _to_list(value: Any, base_dir: str) -> list:
    if not isinstance(value, list):
        raise Invalid(f"expected a list, got {describe(value)}")
    return to_plain(value)


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "port": _to_port,
    "duration": lambda value, base_dir: parse_duration(value),
    "size": lambda value, base_dir: parse_size(value),
    "path": _to_path,
    "mapping": _to_mapping,
    "list": _to_list,
}


def at_least(minimum: float) -> Check:
    """A check that a number is ``minimum`` or more."""
    return lambda value: None if value >= minimum else f"must be {minimum} or more, got {value}"


def between(low: int, high: int) -> Check:
    """A check that a number is from ``low`` to ``high`` inclusive."""
    return lambda value: None if low <= value <= high else (
        f"must be from {low} to {high}, got {value}")


def matches(pattern: str, description: str) -> Check:
    """A check that a string matches ``pattern`` entirely, described for the engineer."""
    compiled = re.compile(pattern)
    return lambda value: None if compiled.fullmatch(value) else (
        f"{describe(value)} is not a valid name: {description}")
