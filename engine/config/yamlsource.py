"""
Reading YAML while remembering where each key and item was written.

Integration engineers fix configuration from error messages, so every value the loader rejects
must be reported with its file and line. ``yaml.safe_load`` forgets positions and silently keeps
the last of two duplicate keys; this module builds ordinary dicts and lists that also carry the
line and column of each key and item, and lists duplicate keys instead of hiding them.

Only the tags of :class:`yaml.SafeLoader` are understood: a configuration file can hold data,
never construct objects.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Position:
    """A place in a YAML file, both numbers counted from 1 as editors show them."""

    line: int
    column: int


def _position(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class YAMLMapping(dict):
    """A mapping read from YAML, knowing where it starts and where each of its keys is."""

    def __init__(self, position: Position):
        super().__init__()
        self.position = position
        self.key_positions: dict[Any, Position] = {}

    def key_position(self, key: Any) -> Position:
        """Where ``key`` is written (the mapping's own position if it is not there)."""
        return self.key_positions.get(key, self.position)


class YAMLSequence(list):
    """A sequence read from YAML, knowing where it starts and where each item is."""

    def __init__(self, position: Position):
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []

    def item_position(self, index: int) -> Position:
        """Where item ``index`` starts."""
        return self.item_positions[index]


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping; YAML itself would keep the last value silently."""

    mapping: YAMLMapping
    key: Any
    position: Position  # the second occurrence
    first: Position


@dataclass
class YAMLDocument:
    """What one file holds: its root value (None if empty) and its duplicate keys."""

    root: Any
    duplicates: list[DuplicateKey] = field(default_factory=list)


class YAMLSourceError(Exception):
    """A file that cannot be read or is not well-formed YAML; ``line`` is 0 if unknown."""

    def __init__(self, message: str, line: int = 0, column: int = 0):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class _PositionLoader(yaml.SafeLoader):
    """SafeLoader building :class:`YAMLMapping` and :class:`YAMLSequence` containers."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []


def _construct_mapping(loader: _PositionLoader, node: yaml.MappingNode):
    mapping = YAMLMapping(_position(node.start_mark))
    yield mapping
    explicit = {id(key_node) for key_node, _ in node.value if key_node.tag != _MERGE_TAG}
    loader.flatten_mapping(node)  # merged (<<) pairs first, so explicit keys override them
    written: set = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise ConstructorError(
                "while reading a mapping", node.start_mark,
                "found a key that is not a plain value", key_node.start_mark)
        here = _position(key_node.start_mark)
        if id(key_node) in explicit:
            if key in written:
                loader.duplicates.append(
                    DuplicateKey(mapping, key, here, mapping.key_position(key)))
            written.add(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_positions[key] = here


def _construct_sequence(loader: _PositionLoader, node: yaml.SequenceNode):
    sequence = YAMLSequence(_position(node.start_mark))
    yield sequence
    for item_node in node.value:
        sequence.append(loader.construct_object(item_node, deep=True))
        sequence.item_positions.append(_position(item_node.start_mark))


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def parse_yaml(text: str | bytes) -> YAMLDocument:
    """Parse one YAML document; raise :class:`YAMLSourceError` if it is not well-formed."""
    loader = _PositionLoader(text)
    try:
        root = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.YAMLError as exc:  # e.g. undecodable bytes: no mark, maybe a position
        raise YAMLSourceError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return YAMLDocument(root, loader.duplicates)


def read_yaml(path: str | os.PathLike) -> YAMLDocument:
    """Read and parse the file at ``path`` (UTF-8, or UTF-16 with a byte order mark)."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise YAMLSourceError(f"cannot read the file: {exc.strerror or exc}") from None
    return parse_yaml(data)


def _syntax_error(exc: yaml.MarkedYAMLError) -> YAMLSourceError:
    mark = exc.problem_mark or exc.context_mark
    parts = [part for part in (exc.context, exc.problem) if part]
    if exc.context and exc.context_mark and exc.problem_mark \
            and exc.context_mark.line != exc.problem_mark.line:
        parts[0] = f"{parts[0]} (line {exc.context_mark.line + 1})"
    message = "invalid YAML: " + ", ".join(parts)
    if exc.problem and "expected <block end>" in exc.problem:
        message += " (often a line indented differently from the lines around it)"
    if mark is None:
        return YAMLSourceError(message)
    return YAMLSourceError(message, mark.line + 1, mark.column + 1)
