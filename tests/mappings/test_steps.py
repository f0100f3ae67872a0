"""Tests for mappings.steps: compiling steps: lists once and running them on messages."""
from __future__ import annotations

import pytest

from engine.synthetic import adt_message, oru_message
from engine.config.yamlsource import parse_yaml
from mappings.message import HL7Message
from mappings.steps import (
    Program, RunOutcome, StepFailure, StepsError, compile_filters, compile_steps,
)
from engine.config.tablefiles import read_table_file
from mappings.tables import parse_csv_table

ADT = "\r".join([
    "MSH|^~\\&|GAM|CHU|AIG|CHU|20240312083015||ADT^A01^ADT_A01|CTRL1|P|2.5",
    "EVN||20240312083015",
    'PID|1||111^^^IPP&1.2.3&ISO^PI~222^^^INS&1.2.250&ISO^INS||DUPONT^Jean^^^^^L||19850714|M'
    '|||1 rue A\\S\\B^^Lyon||""',
    "PV1|1|I|CARD^101^1",
    "OBX|1|NM|GLU^Glucose||5.4|mmol/L",
    "OBX|2|NM|NA^Sodium||140",
    "OBX|3|ST|XYZ^Comment||Dupont \\T\\ Fils",
    "ZBE|MVT1^GAM|20240312||INSERT",
]) + "\r"

LAB = parse_csv_table("local,code,display,system\nGLU,2345-7,Glucose,http://loinc.org\n"
                      "NA,2951-2,Sodium,http://loinc.org\n", name="lab-loinc")
SEX = read_table_file("samples/tables/sex-hl7-to-fhir.yaml")
TABLES = {"lab-loinc": LAB, "sex": SEX}


def run(steps, text: str = ADT, **options) -> tuple[HL7Message, RunOutcome]:
    message = HL7Message.parse(text)
    outcome = compile_steps(steps, tables=TABLES, **options).run(message)
    return message, outcome


def lines(message: HL7Message) -> list[str]:
    return message.to_text().split("\r")


def segment(message: HL7Message, name: str, occurrence: int = 1) -> str:
    return message.segment(name, occurrence).text()


def problems(yaml_text: str, **options) -> list[str]:
    steps = parse_yaml(yaml_text).root
    with pytest.raises(StepsError) as caught:
        compile_steps(steps, file="ch.yaml", tables=TABLES, **options)
    return [str(problem) for problem in caught.value.problems]


def ok(result: HL7Message, path_text: str) -> str | None:
    from mappings.paths import get_one, parse_path
    return get_one(result, parse_path(path_text))


# --- no steps -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [ADT, adt_message(7).decode(), oru_message(3).decode(),
                                  ADT.replace("\r", "\r\n"), ADT.rstrip("\r")])
def test_no_steps_identical(text):
    """If a program has no steps, then the message is written back byte for byte."""
    message = HL7Message.parse(text)
    outcome = compile_steps([]).run(message)
    assert message.to_text() == text
    assert outcome == RunOutcome()


def test_false_conditions_identical():
    """If every step's condition is false, then the message is unchanged."""
    message, _ = run([{"set": "PID-5", "value": "X", "when": 'MSH-9.1 == "ORU"'},
                      {"delete": "ZBE[*]", "when": "not exists(ZBE)"}])
    assert message.to_text() == ADT


# --- set ------------------------------------------------------------------------------------

def test_set_value_escaped():
    """If set writes a value with delimiters, then it is escaped and reads back unescaped."""
    message, _ = run([{"set": "PID-5.2", "value": "Jean|Paul^&"}])
    assert "DUPONT^Jean\\F\\Paul\\S\\\\T\\" in segment(message, "PID")
    assert ok(message, "PID-5.2") == "Jean|Paul^&"


def test_set_creates_and_null():
    """If set targets an absent field or writes '""', then it is created, or the null kept."""
    message, _ = run([{"set": "PV1-10.2", "value": "x"}, {"set": "PV1-4", "value": '""'}])
    assert segment(message, "PV1") == 'PV1|1|I|CARD^101^1|""||||||^x'


def test_set_value_from_and_absent_source():
    """If value-from names a value, then it is copied; if none, then the target is emptied."""
    message, _ = run([{"set": "PV1-2", "value-from": "PID-5.1"},
                      {"set": "PID-5.2", "value-from": "PID-99"}])
    assert ok(message, "PV1-2") == "DUPONT"
    assert ok(message, "PID-5.2") is None


def test_set_every_repetition():
    """If set targets PID-3[*].5, then every repetition is written."""
    message, _ = run([{"set": "PID-3[*].5", "value": "XX"}])
    assert "111^^^IPP&1.2.3&ISO^XX~222^^^INS&1.2.250&ISO^XX" in segment(message, "PID")


def test_set_missing_segment_fails_with_path():
    """If set writes into a missing segment, then StepFailure names the path."""
    with pytest.raises(StepFailure) as caught:
        run([{"set": "ZFA-1", "value": "x"}], file="ch.yaml")
    failure = caught.value
    assert failure.path == "ZFA-1" and failure.field == "steps[0].set"
    assert str(failure).startswith("ch.yaml: steps[0].set: ZFA-1 = 'x': ")


# --- copy, move, delete ---------------------------------------------------------------------

def test_copy_whole_node():
    """If copy names a repetition, then its structure and subcomponents are copied."""
    message, _ = run([{"copy": "PID-3[2]", "to": "PID-2"}])
    assert segment(message, "PID").startswith("PID|1|222^^^INS&1.2.250&ISO^INS|")


def test_copy_escapes_kept():
    """If copy moves escaped text, then the escapes are copied as written."""
    message, _ = run([{"copy": "PID-11", "to": "PID-12"}])
    assert ok(message, "PID-12") == "1 rue A^B"


def test_copy_star_pairs_occurrences():
    """If copy has [*] on both sides, then each OBX's value goes to its own target."""
    message, _ = run([{"copy": "OBX[*]-3.1", "to": "OBX[*]-4"}])
    assert [ok(message, f"OBX[{n}]-4") for n in (1, 2, 3)] == ["GLU", "NA", "XYZ"]


def test_move():
    """If move runs, then the target holds the node and the source is empty."""
    message, _ = run([{"move": "PID-5", "to": "PID-9"}])
    assert ok(message, "PID-9.2") == "Jean" and ok(message, "PID-5") is None


@pytest.mark.parametrize("path, expected", [
    ("ZBE[1]", None), ("OBX[2]", "2"), ("OBX[*]", None)])
def test_delete_segments(path, expected):
    """If delete names segments, then they are removed."""
    message, _ = run([{"delete": path}])
    name = path[:3]
    if path == "OBX[2]":
        assert [s.get(1) for s in message.segments("OBX")] == ["1", "3"]
    else:
        assert message.segments(name) == []


def test_delete_repetition_and_field():
    """If delete names a repetition or field, then it is removed or emptied."""
    message, _ = run([{"delete": "PID-3[1]"}, {"delete": "ZBE-2"}])
    assert ok(message, "PID-3.1") == "222"
    assert segment(message, "ZBE") == "ZBE|MVT1^GAM|||INSERT"


# --- add-segment ----------------------------------------------------------------------------

def test_add_segment_after_and_end():
    """If add-segment runs, then the segment is inserted after the one named, or at the end."""
    message, _ = run([{"add-segment": "ZAI", "after": "PV1", "fields": {1: "a|b", 3: "c"}},
                      {"add-segment": "ZZZ"}])
    text = lines(message)
    assert text[4] == "ZAI|a\\F\\b||c" and text[-2] == "ZZZ" and text[-1] == ""


def test_huge_numbers_are_load_errors_with_line():
    """If a path or an add-segment field number is absurdly long (past what int() reads),
    then the steps list is refused with file:line, not a bare ValueError."""
    found = problems(f"""\
- set: PID-{"9" * 5000}
  value: x
- add-segment: ZAI
  fields:
    "\u00b2": a
    "{"1" * 20}": b
    {"2" * 20}: c
""")
    assert found[0].startswith("ch.yaml:1: steps[0].set: field number of 5000 digits is too "
                               "large (at most 9) at column 5")
    assert found[1].startswith("ch.yaml:5: steps[1].fields: expected a field number")
    assert found[2].startswith("ch.yaml:6: steps[1].fields: expected a field number")
    assert found[3].startswith("ch.yaml:7: steps[1].fields: expected a field number")


def test_add_segment_after_missing_fails():
    """If the after segment is absent, then the message fails with the path named."""
    with pytest.raises(StepFailure, match="no ZFD segment"):
        run([{"add-segment": "ZAI", "after": "ZFD"}])


# --- translate ------------------------------------------------------------------------------

def test_translate_in_place_display_system():
    """If a code is in the table, then it is replaced and display/system written."""
    message, _ = run([{"translate": "OBX-3.1", "table": "lab-loinc", "display-to": "OBX-3.2",
                       "system-to": "OBX-3.3"}])
    assert segment(message, "OBX").startswith("OBX|1|NM|2345-7^Glucose^http://loinc.org|")


def test_translate_unknown_error_names_everything():
    """If a code is unknown with on-unknown error, then the failure names step, path, value."""
    steps = parse_yaml("- for-each: OBX[*]\n  steps:\n   - translate: OBX-3.1\n"
                       "     table: lab-loinc\n").root
    program = compile_steps(steps, file="channels/lab.yaml", tables=TABLES)
    with pytest.raises(StepFailure) as caught:
        program.run(HL7Message.parse(ADT))
    assert str(caught.value) == ("channels/lab.yaml:3: steps[0].steps[0].translate: "
                                 "OBX[3]-3.1 = 'XYZ': code not in table lab-loinc")


@pytest.mark.parametrize("policy, extra, expected", [
    ("keep", {}, "XYZ"), ("default", {"default": "UNK"}, "UNK"), ("empty", {}, None)])
def test_translate_on_unknown(policy, extra, expected):
    """If a code is unknown, then on-unknown keep/default/empty decides what is written."""
    message, _ = run([{"translate": "OBX[3]-3.1", "table": "lab-loinc", "to": "OBX[3]-4",
                       "on-unknown": policy, **extra}])
    assert ok(message, "OBX[3]-4") == expected


def test_translate_table_default_and_case():
    """If the table has a default and ignores case, then unknown codes get the default."""
    message, _ = run([{"translate": "PID-8", "table": "sex", "display-to": "PID-8.2"},
                      {"set": "PV1-2", "value": "a"}, {"translate": "PV1-2", "table": "sex"}])
    assert ok(message, "PID-8") == "male" and ok(message, "PID-8.2") == "Male"
    assert ok(message, "PV1-2") == "unknown"


def test_translate_absent_and_null_untouched():
    """If the value is absent or the HL7 null, then translate leaves it alone."""
    message, _ = run([{"translate": "PID-13", "table": "lab-loinc"},
                      {"translate": "PID-30", "table": "lab-loinc"}])
    assert message.to_text() == ADT


def test_translate_star_in_place():
    """If translate has [*], then every value is translated in place."""
    message, _ = run([{"translate": "OBX[*]-3.1", "table": "lab-loinc", "on-unknown": "keep"}])
    assert [ok(message, f"OBX[{n}]-3.1") for n in (1, 2, 3)] == ["2345-7", "2951-2", "XYZ"]


# --- format ---------------------------------------------------------------------------------

def test_format_in_place_and_to():
    """If format runs, then the value is transformed in place or written to 'to'."""
    message, _ = run([{"format": "PID-7", "with": "dtm-pattern", "pattern": "%d/%m/%Y",
                       "to": "PID-29"}, {"format": "PID-5.2", "with": "upper"}])
    assert ok(message, "PID-29") == "14/07/1985" and ok(message, "PID-5.2") == "JEAN"


def test_format_bad_value_fails():
    """If the value cannot be read, then StepFailure names the path and value."""
    with pytest.raises(StepFailure) as caught:
        run([{"format": "PID-5.1", "with": "dtm-to-iso"}])
    assert caught.value.path == "PID-5.1" and caught.value.value == "DUPONT"


# --- for-each -------------------------------------------------------------------------------

def test_for_each_segments_current_occurrence():
    """If for-each runs over OBX[*], then OBX-n inside names the current OBX."""
    message, _ = run([{"for-each": "OBX[*]", "steps": [
        {"copy": "OBX-1", "to": "OBX-4"},
        {"set": "OBX-9", "value": "numeric", "when": 'OBX-2 == "NM"'}]}])
    assert [ok(message, f"OBX[{n}]-4") for n in (1, 2, 3)] == ["1", "2", "3"]
    assert [ok(message, f"OBX[{n}]-9") for n in (1, 2, 3)] == ["numeric", "numeric", None]


def test_for_each_explicit_index_is_whole_message():
    """If a path inside for-each has an index, then it names the message's segment."""
    message, _ = run([{"for-each": "OBX[*]", "steps": [{"copy": "OBX[1]-3.1", "to": "OBX-4"}]}])
    assert [ok(message, f"OBX[{n}]-4") for n in (1, 2, 3)] == ["GLU"] * 3


def test_for_each_delete_current():
    """If delete: OBX runs inside for-each OBX[*] under a condition, then that OBX goes."""
    message, _ = run([{"for-each": "OBX[*]", "steps": [
        {"delete": "OBX", "when": 'OBX-2 == "ST"'}]}])
    assert [s.get(1) for s in message.segments("OBX")] == ["1", "2"]


def test_for_each_repetitions():
    """If for-each runs over PID-3[*], then PID-3.n names the current repetition."""
    message, _ = run([{"for-each": "PID-3[*]", "steps": [
        {"set": "PID-3.2", "value": "national", "when": 'PID-3.5 == "INS"'}]}])
    assert ok(message, "PID-3[1].2") is None and ok(message, "PID-3[2].2") == "national"


def test_for_each_no_segments():
    """If there are no segments to loop over, then nothing runs."""
    message, _ = run([{"for-each": "ZZZ[*]", "steps": [{"set": "ZZZ-1", "value": "x"}]}])
    assert message.to_text() == ADT


# --- route, stop, filters -------------------------------------------------------------------

def test_route_union_and_stop():
    """If route steps run, then routes add up; if stop runs, then later steps do not."""
    message, outcome = run([{"route": ["a", "b"]}, {"route": "c", "when": 'PV1-2 == "I"'},
                            {"stop": "inpatient"}, {"set": "PID-5", "value": "X"}])
    assert outcome == RunOutcome(True, "inpatient", frozenset("abc"))
    assert ok(message, "PID-5") == "DUPONT"


def test_fail_raises_a_step_failure_and_ends_the_steps():
    """If a fail step runs, then the run raises a StepFailure naming the step and its reason,
    and the later steps do not run; when its condition is false it does nothing."""
    steps = [{"fail": "no IPP", "when": "not exists(PID-3.1)"}, {"set": "PID-5", "value": "X"}]
    message, outcome = run(steps)
    assert outcome == RunOutcome() and ok(message, "PID-5") == "X"
    with pytest.raises(StepFailure) as caught:
        run([{"delete": "PID-3"}] + steps)
    assert str(caught.value) == "<steps>: steps[1].fail: no IPP"


def test_fail_needs_a_reason():
    """If a fail step has no reason, then it is refused at load."""
    assert problems("- fail: ''\n") == [
        "ch.yaml:1: steps[0].fail: expected the reason, such as fail: no document in OBX-5"]


def test_routes_named():
    """If route steps are nested, then routes_named still lists them all."""
    program = compile_steps([{"for-each": "OBX[*]", "steps": [{"route": "lab"}]},
                             {"route": ["dpi"]}])
    assert program.routes_named == {"lab", "dpi"}


def test_filters():
    """If a filter is false, then the outcome is stopped with the filter named."""
    filters = compile_filters(['MSH-9.1 == "ADT"', 'PV1-2 in ["O"]'])
    outcome = filters.run(HL7Message.parse(ADT))
    assert outcome.stopped and outcome.reason == 'filtered by filters[1]: PV1-2 in ["O"]'
    assert not compile_filters(['exists(ZBE)']).run(HL7Message.parse(ADT)).stopped


def test_filter_errors_with_line():
    """If a filter is not a valid condition, then the error has its file:line."""
    with pytest.raises(StepsError) as caught:
        compile_filters(parse_yaml('- MSH-9.1 == "ADT"\n- PID-5 = "X"\n').root, file="f.yaml")
    assert str(caught.value.problems[0]).startswith("f.yaml:2: filters[1]: ")


# --- python ---------------------------------------------------------------------------------

def mark(message, *, value="python"):
    message.segment("PV1").set(2, value)


def stopper(message):
    return RunOutcome(stopped=True, reason="by python", routes=frozenset({"x"}))


def broken(message):
    raise RuntimeError("boom")


def test_python_hatch():
    """If a python step names a callable, then it is called with the message and options."""
    message, _ = run([{"python": f"{__name__}:mark", "value": "Z"}])
    assert ok(message, "PV1-2") == "Z"
    _, outcome = run([{"python": f"{__name__}:stopper"}])
    assert outcome == RunOutcome(True, "by python", frozenset({"x"}))


def test_python_exception_fails():
    """If the callable raises, then StepFailure names it."""
    with pytest.raises(StepFailure, match="raised RuntimeError: boom"):
        run([{"python": f"{__name__}:broken"}])


# --- load errors ----------------------------------------------------------------------------

def test_every_load_error_with_line():
    """If a steps list holds many mistakes, then all are listed, each with its file:line."""
    found = problems("""\
- sett: PID-5
- set: PID-5-1
  value: x
- translate: PID-8
  table: nope
- format: PID-7
  with: dtm-to-isso
- format: PID-7
  with: pad
  lenght: 3
- just text
- copy: PID-5
  move: PID-6
- set: PID-5
  value: x
  when: PID-5 = "x"
- python: os:nope
- python: no_such_module_xyz:f
- delete: PID-5
  tooo: x
- translate: PID-8
- set: PID-5
  value: 12
- for-each: PID-3
  steps: []
- translate: PID-8
  table: sex
  on-unknown: explode
""")
    assert found[0] == ("ch.yaml:1: steps[0]: no operation: expected one of set, copy, move, "
                        "delete, add-segment, translate, format, for-each, route, stop, "
                        "fail, python, include; unknown step 'sett' (did you mean 'set'?)")
    assert found[1].startswith("ch.yaml:2: steps[1].set: unexpected '-'")
    assert "at column 6" in found[1]
    assert found[2].startswith("ch.yaml:5: steps[2].table: unknown table 'nope'")
    assert found[3].startswith("ch.yaml:7: steps[3].with: unknown format 'dtm-to-isso' "
                               "(did you mean 'dtm-to-iso'?)")
    assert found[4].startswith("ch.yaml:9: steps[4].with: format 'pad': unknown parameter "
                               "'lenght' (did you mean 'length'?)")
    assert found[5].startswith("ch.yaml:11: steps[5]: a step must be a mapping")
    assert found[6] == ("ch.yaml:13: steps[6]: one operation per step: copy and move are in "
                        "the same step")
    assert found[7].startswith("ch.yaml:16: steps[7].when: unknown operator")
    assert found[8].startswith("ch.yaml:17: steps[8].python: os has no 'nope'")
    assert found[9].startswith("ch.yaml:18: steps[9].python: cannot import")
    assert found[10].startswith("ch.yaml:20: steps[10].tooo: unknown option 'tooo'")
    assert found[11] == "ch.yaml:21: steps[11].translate: translate needs 'table'"
    assert found[12].startswith("ch.yaml:23: steps[12].value: expected text")
    assert found[13].startswith("ch.yaml:24: steps[13].for-each: for-each takes")
    assert found[14].startswith("ch.yaml:28: steps[14].on-unknown: expected one of")
    assert len(found) == 15


def test_nested_errors_and_plain_dicts():
    """If a nested step is wrong, then its field is nested; plain dicts give line 0."""
    with pytest.raises(StepsError) as caught:
        compile_steps([{"for-each": "OBX[*]", "steps": [{"translate": "OBX-3", "table": "x"}]}],
                      file="p.yaml")
    assert str(caught.value.problems[0]).startswith(
        "p.yaml: steps[0].steps[0].table: unknown table 'x'")


def test_program_metadata():
    """If steps use tables and paths, then the program lists them."""
    program = compile_steps([{"translate": "PID-8", "table": "sex"},
                             {"set": "PV1-2", "value": "x", "when": "exists(ZBE)"}],
                            tables=TABLES)
    assert isinstance(program, Program) and program.tables_used == {"sex"}
    assert {"PID-8", "PV1-2", "ZBE"} <= program.paths_used


def test_compiled_once_runs_many():
    """If one program runs on many messages, then each gets the same result."""
    program = compile_steps([{"set": "MSH-5", "value": "DPI"}])
    for n in range(5):
        message = HL7Message.parse(adt_message(n).decode())
        program.run(message)
        assert ok(message, "MSH-5") == "DPI"


def test_add_segment_after_a_segment_deleted_in_the_loop_fails_cleanly():
    """If a for-each deletes the current segment and then adds a segment after it, then the
    run raises a StepFailure naming the step (not a bare MessageError)."""
    steps = [{"for-each": "OBX[*]", "steps": [{"delete": "OBX"},
                                             {"add-segment": "NTE", "after": "OBX"}]}]
    with pytest.raises(StepFailure) as failure:
        run(steps, "MSH|^~\\&|A\rOBX|1\rOBX|2\r")
    assert "add-segment" in failure.value.field


# --- escapes under formatting, ambiguous deletes ---------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("upper", "\\H\\JEAN\\N\\ DE LA\\.br\\FONTAINE \\X4d\\ 1\\E\\2"),
    ("lower", "\\H\\jean\\N\\ de la\\.br\\fontaine \\X4d\\ 1\\E\\2"),
    ("title", "\\H\\Jean\\N\\ de La\\.br\\Fontaine \\X4d\\ 1\\E\\2"),
])
def test_format_keeps_escape_sequences(name, expected):
    """If upper, lower or title format a value with formatting escape sequences, then the
    text changes and the sequences (and an escaped escape character) are kept as written."""
    text = ADT.replace("DUPONT^Jean^^^^^L", "\\H\\Jean\\N\\ De La\\.br\\fontaine \\X4d\\ 1\\E\\2")
    message, _ = run([{"format": "PID-5", "with": name}], text)
    assert segment(message, "PID").split("|")[5] == expected


def test_delete_segment_without_index_refused():
    """If delete names a segment without an index outside a loop over it, then the load says
    to write [1] or [*]; inside for-each over that segment it is the current one."""
    assert problems("- delete: NTE\n- delete: ORDER_OBSERVATION/NTE\n"
                    "- for-each: OBX[*]\n  steps:\n    - delete: OBX\n") == [
        "ch.yaml:1: steps[0].delete: NTE names the first NTE segment only: write NTE[1] for "
        "the first one or NTE[*] for every one",
        "ch.yaml:2: steps[1].delete: ORDER_OBSERVATION/NTE names the first NTE segment only: "
        "write ORDER_OBSERVATION/NTE[1] for the first one or ORDER_OBSERVATION/NTE[*] for "
        "every one"]


def test_delete_every_nte():
    """If delete names NTE[*], then every NTE goes."""
    text = ADT.replace("ZBE|", "NTE|1\rNTE|2\rZBE|")
    message, _ = run([{"delete": "NTE[*]"}], text)
    assert message.segments("NTE") == []


def test_composite_comparison_refused_at_load():
    """If a condition compares a field without a component to text holding '^', then the load
    refuses it and shows the component-wise form."""
    assert problems('- stop: lab\n  when: MSH-9 == "ORU^R01"\n') == [
        'ch.yaml:2: steps[0].when: MSH-9 reads its first component only, so it is never '
        '"ORU^R01"; write (MSH-9.1 == "ORU" and MSH-9.2 == "R01") at column 10']
