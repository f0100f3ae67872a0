"""Tests for the step trace of mappings.program.Program.run(message, trace=...)."""
from __future__ import annotations

import pytest

from engine.config.yamlsource import parse_yaml
from mappings.message import HL7Message
from mappings.steps import StepFailure, StepTrace, compile_filters, compile_steps
from mappings.tables import parse_csv_table

ORU = "\r".join([
    "MSH|^~\\&|SIL|LAB|AIG|CHU|20240312101522||ORU^R01|C1|P|2.5",
    "PID|1||111^^^IPP||DUPONT^Jean",
    "OBX|1|NM|GLU^Glucose^L||5.4",
    "OBX|2|NM|NA^Sodium^L||140",
]) + "\r"
LAB = parse_csv_table("local,code,display,system\nGLU,2345-7,Glucose,LN\nNA,2951-2,Sodium,LN\n",
                      name="lab")
STEPS = """\
- set: MSH-5
  value: DPI
- delete: PID-5
  when: PID-8 == "X"
- for-each: OBX[*]
  steps:
    - translate: OBX-3.1
      table: lab
    - set: OBX-3.3
      value: LN
- stop: test patient
  when: PID-5.1 == "DUPONT"
- set: MSH-6
  value: never
"""


def traced(steps_yaml: str = STEPS, text: str = ORU):
    program = compile_steps(parse_yaml(steps_yaml).root, file="lab.yaml", tables={"lab": LAB})
    message = HL7Message.parse(text)
    seen: list[StepTrace] = []
    outcome = program.run(message, trace=seen.append)
    return message, outcome, seen


def test_one_trace_per_top_level_step_until_the_stop():
    """If a program runs with a trace, then the trace is called once per top-level step in
    order, a for-each counting as one, and not for the steps after a stop."""
    _, outcome, seen = traced()
    assert [(t.step.field, t.ran, t.stopped) for t in seen] == [
        ("steps[0].set", True, None),
        ("steps[1].delete", False, None),
        ("steps[2].for-each", True, None),
        ("steps[3].stop", True, "test patient"),
    ]
    assert outcome.stopped and outcome.reason == "test patient"


def test_trace_names_the_step_with_its_file_and_line():
    """If a step is traced, then its label is file:line: field, as errors name it."""
    _, _, seen = traced()
    assert [t.label for t in seen] == ["lab.yaml:1: steps[0].set", "lab.yaml:3: steps[1].delete",
                                       "lab.yaml:5: steps[2].for-each",
                                       "lab.yaml:11: steps[3].stop"]


def test_trace_holds_the_message_before_and_after_each_step():
    """If a step changes the message, then its trace holds the text before and after it;
    a skipped step has both equal, and each step starts from the previous one's result."""
    message, _, seen = traced()
    assert seen[0].before == ORU
    assert seen[0].after == ORU.replace("|AIG|", "|DPI|")
    assert seen[1].before == seen[1].after == seen[2].before
    assert "OBX|1|NM|2345-7^Glucose^LN||5.4" in seen[2].after.split("\r")
    assert "OBX|2|NM|2951-2^Sodium^LN||140" in seen[2].after.split("\r")
    assert seen[3].after == message.to_text()


def test_a_failing_step_is_traced_then_raised():
    """If a step fails, then the trace gets it with its StepFailure, and the run raises it."""
    steps = "- set: MSH-5\n  value: DPI\n- translate: PID-5.1\n  table: lab\n"
    program = compile_steps(parse_yaml(steps).root, file="lab.yaml", tables={"lab": LAB})
    seen: list[StepTrace] = []
    with pytest.raises(StepFailure) as caught:
        program.run(HL7Message.parse(ORU), trace=seen.append)
    assert [t.step.field for t in seen] == ["steps[0].set", "steps[1].translate"]
    assert seen[1].failure is caught.value
    assert str(seen[1].failure) == \
        "lab.yaml:3: steps[1].translate: PID-5.1 = 'DUPONT': code not in table lab"


def test_traced_and_untraced_runs_agree():
    """If the same program runs with and without a trace, then the message and the outcome
    are the same (the trace only watches)."""
    program = compile_steps(parse_yaml(STEPS.replace('"DUPONT"', '"X"')).root,
                            tables={"lab": LAB})
    plain, watched = HL7Message.parse(ORU), HL7Message.parse(ORU)
    assert program.run(plain) == program.run(watched, trace=lambda t: None)
    assert plain.to_text() == watched.to_text()


def test_filters_are_traced_as_steps():
    """If filters run with a trace, then each passing filter is traced as ran, and the
    failing one as stopped with the filter's reason."""
    filters = compile_filters(['MSH-9.1 == "ORU"', 'MSH-9.2 == "R30"'], file="lab.yaml")
    seen: list[StepTrace] = []
    outcome = filters.run(HL7Message.parse(ORU), trace=seen.append)
    assert [(t.step.field, t.stopped) for t in seen] == [
        ("filters[0]", None), ("filters[1]", 'filtered by filters[1]: MSH-9.2 == "R30"')]
    assert outcome.stopped
