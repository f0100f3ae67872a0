"""
The examples of docs/mappings.md run, so that the reference of the mapping language cannot rot.

Conventions the page follows (written for this test, readable by people):

- Every ```yaml block starts with ``# fragment`` (tests/test_docs.py asks that of any yaml
  block that is not a whole configuration file). The first line says what the fragment is:

  - ``# fragment of a channel — example: NAME``: a ``steps:`` list. It is compiled with
    :func:`mappings.steps.compile_steps` (file ``channel.yaml``, lines counted from the
    block's first line; the tables of ``samples/tables/`` by name) and run on the message of
    the next ```hl7 block, whose first line is ``# input``. The ```hl7 block after that is
    either ``# output`` (the message as :meth:`HL7Message.to_text` writes it; optional lines
    ``# stopped: REASON`` and ``# routes: a, b`` check the run's outcome, none of them
    meaning "passed, every destination") or a ```text block ``# step-failure`` holding the
    :class:`StepFailure` text. ``# fragment of a channel — filters: NAME`` holds a
    ``filters:`` list, compiled with :func:`compile_filters` and checked the same way.
  - ``# fragment of a channel — invalid: NAME``: a ``steps:`` (or ``filters:``) list that
    must be refused; each line of the ```text block that follows must be a line of the
    :class:`StepsError`.
  - ``# fragment — table: NAME.yaml``: a code table file, parsed (``# fragment — invalid
    table: NAME.yaml``: refused with the lines of the next ```text block). ```csv blocks
    start with ``# table: NAME.csv`` or ``# invalid table: NAME.csv`` (a ``#`` line is a
    comment in a table CSV, so the block is the file as shown).
  - ``# fragment — mapping file: mappings/NAME.yaml``: a mapping file, whose ``steps:`` the
    ``include:`` steps of the examples get (their path is relative to ``channel.yaml``, at
    the root; the file's lines count from the block's first line). Its ``tables:`` name the
    tables of ``samples/tables/`` by file name.
  - any other ``# fragment``: an illustration, not run.

- Messages are written one segment per line; the test joins them with CR (and ends the last
  segment with one), as they travel.
- A ```text block starting with ``# condition: true`` (or ``false``) holds conditions, one per
  line, each compiled with :mod:`mappings.expressions` and evaluated on the last ``# message``
  ```hl7 block above it, values read through :func:`mappings.paths.get`. In
  a ``# condition: invalid`` block the first line is the condition and every other line must
  be a line of the :class:`ExpressionError` (caret included).
- A ```python block starting with ``# module: NAME`` is installed as module NAME for the
  ``python:`` steps of the page.

test-case-name: tests.test_mappings_docs
"""
from __future__ import annotations

import posixpath
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config.yamlsource import parse_yaml
from mappings.expressions import ExpressionError, compile_expression
from mappings.message import HL7Message
from mappings.paths import get, parse_path, present
from mappings.steps import (
    IncludedSteps, StepFailure, StepsError, compile_filters, compile_steps)
from engine.config.tablefiles import read_table_file
from mappings.tables import TableErrors, parse_csv_table, parse_yaml_table

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "mappings.md"
TABLES = {
    "lab-loinc": ROOT / "samples" / "tables" / "lab-loinc.csv",
    "sex-hl7-to-fhir": ROOT / "samples" / "tables" / "sex-hl7-to-fhir.yaml",
}
FILE = "channel.yaml"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARK = re.compile(r"# fragment of a channel — (example|filters|invalid): ([\w.-]+)\s*$")
_MAPPING_FILE = re.compile(r"# fragment — mapping file: ([\w./-]+)\s*$")
_TABLE_MARK = re.compile(r"# (?:fragment — )?(invalid table|table): ([\w.-]+)\s*$")


@dataclass
class Block:
    language: str
    text: str
    line: int

    @property
    def first(self) -> str:
        return self.text.splitlines()[0] if self.text.strip() else ""

    @property
    def body(self) -> list[str]:
        return self.text.splitlines()[1:]


def page_blocks() -> list[Block]:
    text = PAGE.read_text(encoding="utf-8")
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _FENCE.finditer(text)]


BLOCKS = page_blocks()


def hl7(lines: list[str]) -> str:
    segments = [line for line in lines if not line.startswith("# ")]
    return "\r".join(segments) + "\r"


def tables() -> dict:
    return {name: read_table_file(path, name=name) for name, path in TABLES.items()}


def install_modules() -> None:
    for block in BLOCKS:
        if block.language == "python" and block.first.startswith("# module: "):
            name = block.first.partition(": ")[2].strip()
            parent = name.rpartition(".")[0]
            if parent and parent not in sys.modules:
                package = types.ModuleType(parent)
                package.__path__ = []  # a package: importing a missing submodule fails cleanly
                sys.modules[parent] = package
            module = types.ModuleType(name)
            exec(compile(block.text, f"mappings.md:{block.line}", "exec"), module.__dict__)
            sys.modules[name] = module


install_modules()


@dataclass
class Example:
    name: str
    kind: str  # example, filters, invalid
    yaml: Block
    after: list[Block]  # the blocks that follow, up to the next yaml block


def examples() -> dict[str, Example]:
    found: dict[str, Example] = {}
    for index, block in enumerate(BLOCKS):
        if block.language != "yaml":
            continue
        match = _MARK.match(block.first)
        if not match:
            continue
        kind, name = match.groups()
        assert name not in found, f"mappings.md:{block.line}: example {name} written twice"
        following = []
        for other in BLOCKS[index + 1:]:
            if other.language == "yaml":
                break
            following.append(other)
        found[name] = Example(name, kind, block, following)
    return found


EXAMPLES = examples()
RUN = sorted(name for name, e in EXAMPLES.items() if e.kind != "invalid")
INVALID = sorted(name for name, e in EXAMPLES.items() if e.kind == "invalid")


def mapping_files() -> dict[str, Block]:
    return {match.group(1): block for block in BLOCKS if block.language == "yaml"
            and (match := _MAPPING_FILE.match(block.first))}


MAPPING_FILES = mapping_files()


def include(text: str, from_file: str) -> IncludedSteps:
    """The page's resolver: the mapping files written on the page, by path."""
    path = posixpath.normpath(posixpath.join(posixpath.dirname(from_file), text))
    if path not in MAPPING_FILES:
        raise LookupError(f"no mapping file {text!r} on the page")
    return IncludedSteps(path, parse_yaml(MAPPING_FILES[path].text).root["steps"])


def compiled(example: Example):
    root = parse_yaml(example.yaml.text).root
    if "filters" in root:
        return compile_filters(root["filters"], file=FILE)
    return compile_steps(root["steps"], file=FILE, tables=tables(), include=include)


def test_mapping_files_name_tables_of_the_samples() -> None:
    for path, block in MAPPING_FILES.items():
        root = parse_yaml(block.text).root
        assert set(root) <= {"description", "tables", "steps"}, path
        for name, file in (root.get("tables") or {}).items():
            assert (ROOT / "samples" / "tables" / posixpath.basename(file)).is_file(), path
            assert name in TABLES, f"{path}: table {name} is not one the examples load"


def test_every_yaml_block_is_a_fragment() -> None:
    for block in BLOCKS:
        if block.language == "yaml":
            assert block.first.startswith("# fragment"), \
                f"mappings.md:{block.line}: a yaml block starts with '# fragment'"


def test_the_page_has_examples() -> None:
    assert len(RUN) >= 25 and len(INVALID) >= 8
    conditions = [b for b in BLOCKS if b.first.startswith("# condition:")]
    assert len(conditions) >= 8


@pytest.mark.parametrize("name", RUN)
def test_example_runs_as_shown(name: str) -> None:
    example = EXAMPLES[name]
    where = f"mappings.md:{example.yaml.line} ({name})"
    program = compiled(example)
    inputs = [b for b in example.after if b.language == "hl7" and b.first == "# input"]
    assert inputs, f"{where}: no ```hl7 '# input' block after the example"
    message = HL7Message.parse(hl7(inputs[0].body))
    rest = example.after[example.after.index(inputs[0]) + 1:]
    failure = next((b for b in rest if b.language == "text"
                    and b.first == "# step-failure"), None)
    output = next((b for b in rest if b.language == "hl7" and b.first == "# output"), None)
    if failure is not None and (output is None or rest.index(failure) < rest.index(output)):
        with pytest.raises(StepFailure) as caught:
            program.run(message)
        for line in failure.body:
            assert line in str(caught.value).splitlines(), (
                f"{where}: the page shows\n  {line}\nbut the step says\n  {caught.value}")
        return
    assert output is not None, f"{where}: no ```hl7 '# output' block after the input"
    outcome = program.run(message)
    expected = hl7(output.body)
    assert message.to_text().split("\r") == expected.split("\r"), where
    stopped = next((line.partition(": ")[2] for line in output.body
                    if line.startswith("# stopped: ")), None)
    routes = next((line.partition(": ")[2] for line in output.body
                   if line.startswith("# routes: ")), None)
    assert outcome.stopped == (stopped is not None), (where, outcome)
    if stopped is not None:
        assert outcome.reason == stopped, (where, outcome)
    if routes is None:
        assert outcome.routes is None, (where, outcome)
    else:
        assert outcome.routes == frozenset(r.strip() for r in routes.split(",")), where


@pytest.mark.parametrize("name", INVALID)
def test_invalid_example_is_refused_as_shown(name: str) -> None:
    example = EXAMPLES[name]
    where = f"mappings.md:{example.yaml.line} ({name})"
    shown = next((b for b in example.after if b.language == "text"), None)
    assert shown is not None and shown.text.strip(), f"{where}: no ```text block of errors"
    with pytest.raises(StepsError) as caught:
        compiled(example)
    reported = str(caught.value).splitlines()
    for line in shown.text.splitlines():
        if line.strip():
            assert line in reported, (f"{where}: the page shows\n  {line}\nbut the loader "
                                      "says\n  " + "\n  ".join(reported))


# -- conditions ------------------------------------------------------------------------------

def resolver(message: HL7Message):
    def resolve(text: str) -> list[str]:
        path = parse_path(text)
        if path.is_segment:
            return present(message, path)
        return get(message, path)
    return resolve


def condition_blocks() -> list[tuple[str, Block, str | None]]:
    found = []
    message = None
    for block in BLOCKS:
        if block.language == "hl7" and block.first == "# message":
            message = hl7(block.body)
        elif block.language == "text" and block.first.startswith("# condition:"):
            found.append((f"mappings.md:{block.line}", block, message))
    return found


CONDITIONS = condition_blocks()


@pytest.mark.parametrize("where, block, message", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition_holds_as_shown(where: str, block: Block, message: str | None) -> None:
    expected = block.first.partition(":")[2].strip()
    if expected == "invalid":
        text, *shown = block.body
        with pytest.raises(ExpressionError) as caught:
            compile_expression(text)
        reported = str(caught.value).splitlines()
        for line in shown:
            assert line in reported, (f"{where}: the page shows\n  {line}\nbut the parser "
                                      "says\n  " + "\n  ".join(reported))
        return
    assert expected in ("true", "false"), where
    assert message is not None, f"{where}: no message above the condition"
    resolve = resolver(HL7Message.parse(message))
    for text in block.body:
        if not text.strip():
            continue
        for path_text in compile_expression(text).paths:
            parse_path(path_text)  # the loader checks every path with the real parser
        assert compile_expression(text).evaluate(resolve) is (expected == "true"), (
            f"{where}: {text} should be {expected}")


# -- code tables -----------------------------------------------------------------------------

def table_blocks() -> list[tuple[str, Block, bool, str, Block | None]]:
    found = []
    for index, block in enumerate(BLOCKS):
        if block.language not in ("yaml", "csv"):
            continue
        match = _TABLE_MARK.match(block.first)
        if not match:
            continue
        following = BLOCKS[index + 1] if index + 1 < len(BLOCKS) else None
        found.append((f"mappings.md:{block.line}", block, match.group(1) == "table",
                      match.group(2), following))
    return found


TABLE_BLOCKS = table_blocks()


def parse_table(block: Block, name: str):
    file = f"tables/{name}"
    if name.endswith(".csv"):
        return parse_csv_table(block.text, file=file, name=name.rsplit(".", 1)[0])
    return parse_yaml_table(block.text, file=file, name=None)


@pytest.mark.parametrize("where, block, valid, name, following", TABLE_BLOCKS,
                         ids=[t[0] for t in TABLE_BLOCKS])
def test_table_example(where, block, valid, name, following) -> None:
    if valid:
        table = parse_table(block, name)
        assert len(table) >= 1, where
        return
    assert following is not None and following.language == "text", where
    with pytest.raises(TableErrors) as caught:
        parse_table(block, name)
    reported = str(caught.value).splitlines()
    for line in following.text.splitlines():
        if line.strip():
            assert line in reported, (f"{where}: the page shows\n  {line}\nbut the table "
                                      "loader says\n  " + "\n  ".join(reported))


def test_the_sample_tables_are_the_ones_the_page_describes() -> None:
    loaded = tables()
    assert loaded["lab-loinc"].translate("GLY").code == "14749-6"
    assert loaded["lab-loinc"].translate("FERR") is None
    assert loaded["sex-hl7-to-fhir"].translate("x").code == "unknown"
