"""
Code tables: a sender's local codes and what they stand for in a shared terminology.

Every lab, every PAS has its own codes (``GLY`` for glucose, ``1`` for male); the ``translate``
step turns them into the codes the receiver understands (LOINC, FHIR value sets) through a
table that the integration engineer keeps in a CSV or YAML file next to the channel. A table is
read once, when the channel is loaded or reloaded, and then only looked up, so this module
does all checking at load time and makes :meth:`CodeTable.translate` one dictionary lookup.

A table file holding mistakes is refused as a whole: the parsers collect *every* problem, each
with its file and line, and raise :class:`TableErrors`, so that ``aiguillage check-config``
shows them all in one run. Parsing works on bytes or text already read: the configuration
(engine/config/tablefiles.py) reads the files, so that mappings never touch the disk.

CSV files (``.csv``): UTF-8 with or without a byte order mark, a header row naming the columns
``local`` and ``code`` and, optionally, ``display`` and ``system``, in any order; the delimiter
is ``,`` or, when the header has ``;`` and no ``,`` (a French spreadsheet export), ``;``. Lines
starting with ``#`` and blank lines are skipped; one row per line. Cells are stripped of
surrounding blanks. Columns other than the four are refused, so that a misspelt ``sytem`` cannot
silently drop the code system. YAML files (``.yaml``/``.yml``)::

    name: sex-hl7-to-fhir              # optional, defaults to the file name without extension
    system: http://hl7.org/fhir/administrative-gender   # optional, the codes' default system
    case-sensitive: false             # optional, default true
    default: {code: unknown, display: Unknown}          # optional: for codes not in the table
    codes:
      M: male                         # the target code only
      F: {code: female, display: Female}               # or code, display, system

YAML codes are read as written, never typed: ``NO``, ``01`` and ``1.0`` stay the text they are
(plain YAML would turn them into false, 1 and 1.0). Empty local or target codes and duplicate
local codes are errors in both formats; in a table that ignores case, ``gly`` duplicates ``GLY``.

test-case-name: tests.mappings.test_tables
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterator, Mapping

import yaml

CSV_COLUMNS = ("local", "code", "display", "system")
_REQUIRED_COLUMNS = ("local", "code")
_YAML_KEYS = ("name", "system", "case-sensitive", "default", "codes")
_CODE_KEYS = ("code", "display", "system")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"


@dataclass(frozen=True, slots=True)
class Translation:
    """What a local code stands for: the target ``code``, its ``display`` text, its ``system``."""

    code: str
    display: str = ""
    system: str = ""


@dataclass(frozen=True, slots=True)
class TableError:
    """One problem in a table file; ``line`` counts from 1, 0 when no line applies."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class TableErrors(Exception):
    """Every problem found in one table file; the file is refused as a whole."""

    def __init__(self, errors: list[TableError]):
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = list(errors)


class CodeTable:
    """
    Local codes and their translations, looked up in constant time.

    ``entries`` maps each local code, as written in the file, to its :class:`Translation`.
    ``default`` is returned for codes not in the table (``None`` if the table has none, and the
    step then applies its ``on-unknown`` policy). When ``case_sensitive`` is false, ``gly``,
    ``Gly`` and ``GLY`` are the same code.
    """

    __slots__ = ("name", "entries", "default", "case_sensitive", "_lookup")

    def __init__(self, name: str, entries: Mapping[str, Translation],
                 default: Translation | None = None, case_sensitive: bool = True):
        lookup = dict(entries) if case_sensitive else {
            local.casefold(): translation for local, translation in entries.items()}
        if len(lookup) != len(entries):
            raise ValueError(f"table {name!r}: local codes that differ only by case")
        self.name = name
        self.entries = MappingProxyType(dict(entries))
        self.default = default
        self.case_sensitive = case_sensitive
        self._lookup = lookup

    def translate(self, code: str) -> Translation | None:
        """The translation of ``code``, else the table's default, else ``None``."""
        if self.case_sensitive:
            return self._lookup.get(code, self.default)
        return self._lookup.get(code.casefold(), self.default)

    def __contains__(self, code: str) -> bool:
        return (code if self.case_sensitive else code.casefold()) in self._lookup

    def __len__(self) -> int:
        return len(self._lookup)

    def __repr__(self) -> str:
        return f"<CodeTable {self.name!r}: {len(self)} codes>"


class _Collector:
    """Gathers a table's entries and every problem found while reading one file."""

    def __init__(self, file: str, case_sensitive: bool):
        self.file = file
        self.case_sensitive = case_sensitive
        self.errors: list[TableError] = []
        self.entries: dict[str, Translation] = {}
        self._first: dict[str, tuple[str, int]] = {}  # folded code -> (as written, line)

    def error(self, line: int, message: str) -> None:
        self.errors.append(TableError(self.file, line, message))

    def add(self, line: int, local: str, translation: Translation) -> None:
        key = local if self.case_sensitive else local.casefold()
        if key in self._first:
            written, first = self._first[key]
            same = "" if written == local else f" (as {written!r}: the table ignores case)"
            self.error(line, f"duplicate local code {local!r}, already on line {first}{same}")
            return
        self._first[key] = (local, line)
        self.entries[local] = translation

    def table(self, name: str, default: Translation | None) -> CodeTable:
        if not self.entries and not self.errors:
            self.error(0, "the table has no codes")
        if self.errors:
            raise TableErrors(self.errors)
        return CodeTable(name, self.entries, default, self.case_sensitive)


def parse_csv_table(text: str, *, file: str = "<csv>", name: str | None = None,
                    system: str = "", default: Translation | None = None,
                    case_sensitive: bool = True) -> CodeTable:
    """
    Build a table from CSV ``text``; raise :class:`TableErrors` listing every problem.

    A CSV file cannot say its name, default system, default translation or whether case
    matters, so the channel passes them here; ``system`` fills the rows whose ``system`` cell
    is empty or absent.
    """
    collector = _Collector(file, case_sensitive)
    rows = _csv_rows(text.removeprefix("\ufeff"))
    header = next(rows, None)
    if header is None:
        collector.error(1, "empty file: a header row such as "
                           f"'{','.join(CSV_COLUMNS)}' is expected")
        raise TableErrors(collector.errors)
    columns = _csv_columns(collector, *header)
    if columns is not None:
        for line, cells in rows:
            _csv_row(collector, line, cells, columns, len(header[1]), system)
    return collector.table(name if name is not None else _stem(file), default)


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV row with the number of the line it starts on, skipping comments and blanks."""
    numbers: list[int] = []

    def lines() -> Iterator[str]:
        for number, line in enumerate(text.split("\n"), 1):
            line = line.rstrip("\r")
            if line.strip() and not line.lstrip().startswith("#"):
                numbers.append(number)
                yield line

    source = lines()
    first = next(source, None)
    if first is None:
        return
    delimiter = ";" if ";" in first and "," not in first else ","
    consumed = 0
    for cells in csv.reader(_chain(first, source), delimiter=delimiter):
        yield numbers[consumed], [cell.strip() for cell in cells]
        consumed = len(numbers)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _csv_columns(collector: _Collector, line: int, header: list[str]) -> dict[str, int] | None:
    """Where each known column is, or None (with the errors recorded) if the header is wrong."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = cell.lower()
        if column not in CSV_COLUMNS:
            collector.error(line, f"unknown column {cell!r} in the header; "
                                  f"the columns are {', '.join(CSV_COLUMNS)}")
        elif column in columns:
            collector.error(line, f"column {column!r} appears twice in the header")
        else:
            columns[column] = index
    for column in _REQUIRED_COLUMNS:
        if column not in columns:
            collector.error(line, f"the header has no {column!r} column")
    return None if collector.errors else columns


def _csv_row(collector: _Collector, line: int, cells: list[str], columns: dict[str, int],
             width: int, system: str) -> None:
    if len(cells) != width:
        collector.error(line, f"{len(cells)} cells where the header has {width}")
        return
    local, code = cells[columns["local"]], cells[columns["code"]]
    if not local:
        collector.error(line, "empty local code")
    if not code:
        collector.error(line, f"no target code for local code {local!r}" if local
                        else "empty target code")
    if local and code:
        display = cells[columns["display"]] if "display" in columns else ""
        row_system = cells[columns["system"]] if "system" in columns else ""
        collector.add(line, local, Translation(code, display, row_system or system))


def parse_yaml_table(text: str | bytes, *, file: str = "<yaml>", name: str | None = None,
                     system: str = "", default: Translation | None = None,
                     case_sensitive: bool = True) -> CodeTable:
    """
    Build a table from YAML ``text``; raise :class:`TableErrors` listing every problem.

    The keyword arguments are what the channel says about the table; the file's own ``name``,
    ``system``, ``default`` and ``case-sensitive`` keys take precedence over them.
    """
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise TableErrors([TableError(file, mark.line + 1 if mark else 0,
                                      f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise TableErrors([TableError(file, 0, f"invalid YAML: {exc}")]) from None
    if not isinstance(root, yaml.MappingNode):
        line = _line(root) if root is not None else 1
        raise TableErrors([TableError(file, line, "a table file is a mapping with a 'codes:' key")])
    collector = _Collector(file, case_sensitive)
    keys = _yaml_keys(collector, root)
    if "case-sensitive" in keys:
        collector.case_sensitive = _yaml_bool(collector, keys["case-sensitive"], case_sensitive)
    system = _yaml_text(collector, keys.get("system"), "system") or system
    name = _yaml_text(collector, keys.get("name"), "name") or name
    if "default" in keys:
        default = _yaml_translation(collector, keys["default"], system, "default")
    if "codes" not in keys:
        collector.error(_line(root), "no 'codes:' key")
    elif not isinstance(keys["codes"], yaml.MappingNode):
        collector.error(_line(keys["codes"]), "'codes:' must map each local code to its target")
    else:
        _yaml_codes(collector, keys["codes"], system)
    return collector.table(name if name is not None else _stem(file), default)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _yaml_keys(collector: _Collector, root: yaml.MappingNode) -> dict[str, yaml.Node]:
    """The top-level keys of a table file, unknown and repeated ones reported."""
    keys: dict[str, yaml.Node] = {}
    seen: dict[str, int] = {}
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in _YAML_KEYS:
            collector.error(_line(key_node), f"unknown key {key!r}; the keys of a table file "
                                             f"are {', '.join(_YAML_KEYS)}")
        elif key in seen:
            collector.error(_line(key_node), f"{key!r} is written twice (first on line "
                                             f"{seen[key]})")
        else:
            seen[key] = _line(key_node)
            keys[key] = value_node
    return keys


def _yaml_bool(collector: _Collector, node: yaml.Node, fallback: bool) -> bool:
    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
        return node.value.lower() in ("true", "yes", "on", "y")
    collector.error(_line(node), "'case-sensitive' must be true or false")
    return fallback


def _yaml_text(collector: _Collector, node: yaml.Node | None, what: str) -> str:
    """A scalar's text as written ('' for an empty value or a missing node)."""
    if node is None:
        return ""
    if not isinstance(node, yaml.ScalarNode):
        collector.error(_line(node), f"{what} must be a single value")
        return ""
    if node.tag == _NULL_TAG and node.style is None and node.value in ("", "~", "null", "Null",
                                                                       "NULL"):
        return ""
    return node.value.strip()


def _yaml_translation(collector: _Collector, node: yaml.Node, system: str,
                      what: str) -> Translation | None:
    """A target written as a bare code or as a mapping of code, display and system."""
    if isinstance(node, yaml.ScalarNode):
        code = _yaml_text(collector, node, what)
        if code:
            return Translation(code, "", system)
        collector.error(_line(node), f"no target code for {what}")
        return None
    if not isinstance(node, yaml.MappingNode):
        collector.error(_line(node), f"{what}: expected a code or a mapping with 'code:'")
        return None
    fields: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in _CODE_KEYS:
            collector.error(_line(key_node), f"{what}: unknown key {key!r}; expected "
                                             f"{', '.join(_CODE_KEYS)}")
        elif key in fields:
            collector.error(_line(key_node), f"{what}: {key!r} is written twice")
        else:
            fields[key] = _yaml_text(collector, value_node, f"{what}: {key}")
    if not fields.get("code"):
        collector.error(_line(node), f"no target code for {what}")
        return None
    return Translation(fields["code"], fields.get("display", ""), fields.get("system") or system)


def _yaml_codes(collector: _Collector, codes: yaml.MappingNode, system: str) -> None:
    for key_node, value_node in codes.value:
        line = _line(key_node)
        local = _yaml_text(collector, key_node, "a local code")
        if not local:
            collector.error(line, "empty local code")
            continue
        translation = _yaml_translation(collector, value_node, system, f"local code {local!r}")
        if translation is not None:
            collector.add(line, local, translation)


def check_table_extension(file: str) -> str:
    """The extension of table file ``file`` (lower case); TableErrors unless CSV or YAML."""
    extension = os.path.splitext(file)[1].lower()
    if extension not in (".csv", ".yaml", ".yml"):
        raise TableErrors([TableError(file, 0, "a code table is a .csv, .yaml or .yml file")])
    return extension


def parse_table_bytes(data: bytes, file: str, *, name: str | None = None, system: str = "",
                      default: Translation | None = None,
                      case_sensitive: bool = True) -> CodeTable:
    """
    Parse the bytes of table file ``file``, CSV or YAML by its extension.

    The caller reads the file (the configuration does: mappings do no I/O); the keyword
    arguments are passed to :func:`parse_csv_table` or :func:`parse_yaml_table`, and the
    table's name defaults to the file name without its extension.
    """
    extension = check_table_extension(file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TableErrors([TableError(file, line, "not UTF-8 text (byte "
                                                  f"0x{data[exc.start]:02x}); save the file "
                                                  "as UTF-8")]) from None
    parse = parse_csv_table if extension == ".csv" else parse_yaml_table
    return parse(text, file=file, name=name, system=system, default=default,
                 case_sensitive=case_sensitive)


def _stem(file: str) -> str:
    return os.path.splitext(os.path.basename(file))[0]


def synthetic_table_csv(rows: int = 1000) -> str:
    """
    CSV text of a made-up table with ``rows`` codes, for benchmarks and load-time tests only.

    Local codes are ``L00000``, ``L00001``...; the targets live in an example code system so
    that nobody mistakes them for real LOINC codes.
    """
    lines = ["local,code,display,system"]
    lines.extend(f"L{index:05d},S{index + 10000}-{index % 10},Synthetic analyte {index},"
                 "http://example.org/aiguillage/synthetic" for index in range(rows))
    return "\n".join(lines) + "\n"
