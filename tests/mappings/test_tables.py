"""
Tests for mappings.tables: CSV and YAML code tables, their errors with lines, the lookup.
"""
import os
import timeit

import pytest

from engine.config.tablefiles import read_table_file
from mappings.tables import (
    CodeTable, TableError, TableErrors, Translation, parse_csv_table,
    parse_yaml_table, synthetic_table_csv)

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "samples")
LN = "LN"


def errors_of(parse, text, **options):
    """The (line, message) of every error raised while parsing ``text``."""
    with pytest.raises(TableErrors) as caught:
        parse(text, file="t", **options)
    return [(error.line, error.message) for error in caught.value.errors]


def test_csv_rows_become_translations():
    """If a CSV file has the four columns, then each row is a translation of its local code."""
    table = parse_csv_table("local,code,display,system\nGLY,14749-6,Glucose,LN\n", file="x.csv")
    assert table.translate("GLY") == Translation("14749-6", "Glucose", LN)
    assert table.name == "x"
    assert len(table) == 1 and "GLY" in table


def test_csv_columns_in_any_order():
    """If the columns are in another order, then they are read by their header names."""
    table = parse_csv_table("system,display,code,local\nLN,Sodium,2951-2,NA\n")
    assert table.translate("NA") == Translation("2951-2", "Sodium", LN)


def test_csv_header_names_ignore_case_and_blanks():
    """If the header is written ' Local , CODE', then the columns are still found."""
    table = parse_csv_table(" Local , CODE \n K , 2823-3 \n")
    assert table.translate("K") == Translation("2823-3")


def test_csv_system_default_fills_empty_cells():
    """If a row has no system, then the table-level system is used; a row's own one wins."""
    table = parse_csv_table("local,code,system\nA,1,\nB,2,OTHER\n", system="LN")
    assert table.translate("A").system == "LN"
    assert table.translate("B").system == "OTHER"


def test_csv_without_system_column_uses_default_system():
    """If there is no system column, then every row takes the table-level system."""
    table = parse_csv_table("local,code,display\nA,1,One\n", system="LN")
    assert table.translate("A") == Translation("1", "One", LN)


def test_csv_bom_is_ignored():
    """If the text starts with a byte order mark, then the first column is still 'local'."""
    table = parse_csv_table("\ufefflocal,code\nA,1\n")
    assert table.translate("A").code == "1"


def test_csv_comments_and_blank_lines_are_skipped_and_lines_counted():
    """If comments and blank lines surround the rows, then errors still name the real line."""
    text = "# a comment\nlocal,code\n\n  # another\nA,1\n,2\n"
    assert errors_of(parse_csv_table, text) == [(6, "empty local code")]


def test_csv_semicolon_delimiter():
    """If the header uses ';' and no ',', then ';' separates the cells (French exports)."""
    table = parse_csv_table("local;code;display\nCRP;1988-5;C reactive protein, serum\n")
    assert table.translate("CRP").display == "C reactive protein, serum"


def test_csv_quoted_cells_with_commas():
    """If a display holds a comma inside quotes, then it is one cell."""
    table = parse_csv_table('local,code,display\nDFG,62238-1,"Serum, Plasma"\n')
    assert table.translate("DFG").display == "Serum, Plasma"


def test_csv_crlf_line_ends():
    """If lines end with CR LF, then no cell keeps a CR."""
    table = parse_csv_table("local,code\r\nA,1\r\n")
    assert table.translate("A") == Translation("1")


def test_csv_duplicate_local_code_names_both_lines():
    """If a local code appears twice, then the error is on the second line and names the first."""
    assert errors_of(parse_csv_table, "local,code\nA,1\nB,2\nA,3\n") == [
        (4, "duplicate local code 'A', already on line 2")]


def test_csv_duplicate_ignoring_case():
    """If the table ignores case, then 'a' duplicates 'A' and the message says why."""
    errors = errors_of(parse_csv_table, "local,code\nA,1\na,2\n", case_sensitive=False)
    assert errors == [(3, "duplicate local code 'a', already on line 2 "
                          "(as 'A': the table ignores case)")]


def test_csv_every_error_is_collected():
    """If many rows are wrong, then every one is reported with its line, in order."""
    text = "local,code\n,1\nB,\nC,1,extra\nD,4\nD,5\n"
    assert errors_of(parse_csv_table, text) == [
        (2, "empty local code"),
        (3, "no target code for local code 'B'"),
        (4, "3 cells where the header has 2"),
        (6, "duplicate local code 'D', already on line 5")]


def test_csv_header_errors():
    """If the header has an unknown, a repeated or a missing column, then each is reported."""
    errors = errors_of(parse_csv_table, "# c\nlocal,sytem,local\nA,B,C\n")
    assert errors == [
        (2, "unknown column 'sytem' in the header; the columns are local, code, display, "
            "system"),
        (2, "column 'local' appears twice in the header"),
        (2, "the header has no 'code' column")]


def test_csv_empty_file():
    """If the file has no header, then the error says a header is expected."""
    assert errors_of(parse_csv_table, "# only a comment\n")[0][0] == 1
    assert "header" in errors_of(parse_csv_table, "")[0][1]


def test_csv_header_only_has_no_codes():
    """If the file has a header and no rows, then it is refused as a table with no codes."""
    assert errors_of(parse_csv_table, "local,code\n") == [(0, "the table has no codes")]


def test_table_error_text():
    """If an error has a line, then it reads file:line: message, else file: message."""
    assert str(TableError("a.csv", 3, "bad")) == "a.csv:3: bad"
    assert str(TableError("a.csv", 0, "bad")) == "a.csv: bad"
    assert str(TableErrors([TableError("a", 1, "x"), TableError("a", 2, "y")])) \
        == "a:1: x\na:2: y"


def test_unknown_code_gives_default_or_none():
    """If a code is not in the table, then the default is returned, or None without one."""
    entries = {"A": Translation("1")}
    assert CodeTable("t", entries).translate("Z") is None
    assert CodeTable("t", entries, Translation("?")).translate("Z") == Translation("?")


def test_case_sensitivity():
    """If the table is case-sensitive, then 'a' is unknown; if not, then 'a' finds 'A'."""
    entries = {"Gly": Translation("1")}
    assert CodeTable("t", entries).translate("gly") is None
    insensitive = CodeTable("t", entries, case_sensitive=False)
    assert insensitive.translate("GLY") == Translation("1")
    assert "gLY" in insensitive
    assert dict(insensitive.entries) == entries


def test_code_table_refuses_codes_equal_ignoring_case():
    """If two codes differ only by case in a case-insensitive table, then it is refused."""
    with pytest.raises(ValueError):
        CodeTable("t", {"a": Translation("1"), "A": Translation("2")}, case_sensitive=False)


YAML_TABLE = """\
name: sex
system: http://hl7.org/fhir/administrative-gender
case-sensitive: false
default: {code: unknown, display: Unknown}
codes:
  M: male
  F: {code: female, display: Female}
  X: {code: x, system: other}
  NO: norway
  01: one
"""


def test_yaml_table():
    """If a YAML table has bare and full targets, then both are read with the table's system."""
    table = parse_yaml_table(YAML_TABLE, file="s.yaml")
    system = "http://hl7.org/fhir/administrative-gender"
    assert table.name == "sex"
    assert table.translate("m") == Translation("male", "", system)
    assert table.translate("F") == Translation("female", "Female", system)
    assert table.translate("X") == Translation("x", "", "other")
    assert table.translate("Z") == Translation("unknown", "Unknown", system)


def test_yaml_codes_are_text_as_written():
    """If codes look like YAML booleans or numbers, then they stay the text written."""
    table = parse_yaml_table(YAML_TABLE)
    assert table.translate("NO").code == "norway"
    assert table.translate("01").code == "one"
    assert "1" not in table


def test_yaml_name_from_file_and_options_as_defaults():
    """If the file says no name, system or case, then the file name and options are used."""
    table = parse_yaml_table("codes: {a: '1'}\n", file="dir/lab.yml", system="LN")
    assert table.name == "lab"
    assert table.translate("a") == Translation("1", "", LN)
    assert table.translate("A") is None


def test_yaml_every_error_with_its_line():
    """If a YAML table has many mistakes, then each is reported on its own line."""
    text = ("sytem: LN\ncase-sensitive: maybe\ncodes:\n  A: '1'\n  A: '2'\n  B:\n"
            "  C: {code: '3', colour: red}\n  D: {display: no code}\n  '': '5'\n  E: [1]\n")
    assert errors_of(parse_yaml_table, text) == [
        (1, "unknown key 'sytem'; the keys of a table file are name, system, case-sensitive, "
            "default, codes"),
        (2, "'case-sensitive' must be true or false"),
        (5, "duplicate local code 'A', already on line 4"),
        (6, "no target code for local code 'B'"),
        (7, "local code 'C': unknown key 'colour'; expected code, display, system"),
        (8, "no target code for local code 'D'"),
        (9, "empty local code"),
        (10, "local code 'E': expected a code or a mapping with 'code:'")]


def test_yaml_structure_errors():
    """If the file is not a mapping or has no usable codes, then the line is given."""
    assert errors_of(parse_yaml_table, "- a\n- b\n")[0][0] == 1
    assert errors_of(parse_yaml_table, "name: x\n") == [(1, "no 'codes:' key")]
    assert errors_of(parse_yaml_table, "name: x\ncodes: [a]\n") == [
        (2, "'codes:' must map each local code to its target")]
    assert errors_of(parse_yaml_table, "codes: {}\nname: x\nname: y\n") == [
        (3, "'name' is written twice (first on line 2)")]


def test_yaml_syntax_error_has_its_line():
    """If the YAML is not well-formed, then the error names the line of the problem."""
    [(line, message)] = errors_of(parse_yaml_table, "codes:\n  A: '1'\n  B: [\n")
    assert line == 4 and message.startswith("invalid YAML")


def test_load_csv_and_yaml_by_extension(tmp_path):
    """If files end in .csv or .yaml, then each is parsed as such; BOM bytes are accepted."""
    csv_file = tmp_path / "lab.csv"
    csv_file.write_bytes(b"\xef\xbb\xbflocal,code\nA,1\n")
    yaml_file = tmp_path / "sex.yaml"
    yaml_file.write_text("codes: {M: male}\n", encoding="utf-8")
    assert read_table_file(csv_file).translate("A") == Translation("1")
    assert read_table_file(yaml_file, system="S").translate("M") == Translation("male", "", "S")


def test_load_refuses_other_files(tmp_path):
    """If a file is missing, not UTF-8 or of another kind, then one error says which."""
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"local,code\nGLY,1\nGLYC\xe9MIE,2\n")
    for path, line, words in ((tmp_path / "none.csv", 0, "cannot read"),
                              (latin, 3, "not UTF-8"), (tmp_path / "t.txt", 0, ".csv")):
        with pytest.raises(TableErrors) as caught:
            read_table_file(path)
        [error] = caught.value.errors
        assert (error.file, error.line) == (str(path), line) and words in error.message


def test_sample_lab_table_covers_the_sample_results():
    """If the sample ORU messages are translated, then every OBX-3 local code is in the table,
    and where the lab already sent a LOINC code, the table gives the same one."""
    table = read_table_file(os.path.join(SAMPLES, "tables", "lab-loinc.csv"))
    seen = 0
    for name in ("r01-biochemistry.hl7", "r01-haematology.hl7"):
        with open(os.path.join(SAMPLES, "oru", name), encoding="utf-8", newline="") as stream:
            segments = stream.read().split("\r")
        for segment in (s for s in segments if s.startswith("OBX|")):
            observation = segment.split("|")[3].split("^")
            translation = table.translate(observation[0])
            assert translation is not None and translation.system == LN, observation
            if len(observation) > 5 and observation[5] == LN:
                assert translation.code == observation[3]
            seen += 1
    assert seen == 19


def test_sample_sex_table():
    """If PID-8 holds m, A or nothing known, then the FHIR code is male or the default."""
    table = read_table_file(os.path.join(SAMPLES, "tables", "sex-hl7-to-fhir.yaml"))
    assert table.translate("m").code == "male"
    assert table.translate("A").code == "unknown"
    assert table.translate("O").system == "http://hl7.org/fhir/administrative-gender"


def test_thousand_rows_load_and_lookup_fast():
    """If a table has 1 000 rows, then it loads in well under 100 ms and translates in < 1 us."""
    text = synthetic_table_csv(1000)
    load = min(timeit.repeat(lambda: parse_csv_table(text), number=1, repeat=5))
    table = parse_csv_table(text)
    assert len(table) == 1000 and table.translate("L00999").code == "S10999-9"
    lookup = min(timeit.repeat(lambda: table.translate("L00500"), number=10000, repeat=5))
    assert load < 0.05
    assert lookup / 10000 < 1e-6
