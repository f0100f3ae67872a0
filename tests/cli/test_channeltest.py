"""
Tests for engine.cli.channeltest.runner, engine.cli.channeltest.fixtures and ``aiguillage test-channel``: one
message through a channel's real pipeline, without network or store; fixtures as YAML.

A small configuration is written once per module (a ``lab`` channel with a filter, steps,
route steps and per-destination steps; an ``adt`` channel that only routes) and loaded with
the engine's own loader.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import status as st
from engine.app import load_config
from engine.cli.channeltest.fixtures import (
    FixtureError, check_fixture, failure_text, fixture_files, load_fixture)
from engine.cli.channeltest.runner import (
    FAILED, RAN, SKIPPED, STOPPED, UnknownChannel, find_channel, run_payload, segment_changes)
from engine.cli.main import main
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage

ROOT = Path(__file__).resolve().parents[2]
LAB_CHANNEL = """\
name: lab
source:
  type: mllp
  port: 0
tables:
  lab-loinc: {table}
filters:
  - MSH-9.1 == "ORU"
steps:
  - set: MSH-5
    value: DPI
  - delete: ZZZ[*]
    when: exists(ZZZ)
  - for-each: OBX[*]
    steps:
      - translate: OBX-3.1
        table: lab-loinc
        system-to: OBX-3.3
  - route: [dpi, archive]
    when: PID-8 != "X"
  - route: archive
    when: PID-8 == "X"
  - stop: test patient
    when: PID-5.1 == "TEST"
destinations:
  - name: dpi
    type: file
    directory: out
    steps:
      - set: MSH-6
        value: CABINET
      - stop: no value for the DPI
        when: OBX-5 == "0"
  - name: archive
    type: file
    directory: out
  - name: never
    type: file
    directory: out
"""
ADT_CHANNEL = """\
name: adt
encoding: 8859/1
source:
  type: mllp
  port: 0
destinations:
  - name: archive
    type: file
    directory: out
"""
STRICT_CHANNEL = """\
name: strict
validation: structure
source:
  type: mllp
  port: 0
destinations:
  - name: archive
    type: file
    directory: out
"""
ORU = [
    "MSH|^~\\&|SIL|LAB|AIG|CHU|20240312101522||ORU^R01^ORU_R01|C1|P|2.5",
    "PID|1||111^^^IPP||DUPONT^Jean||19850714|M",
    "OBX|1|NM|GLY^Glycémie^L||6.8|mmol/L",
    "OBX|2|NM|NA^Sodium^L||138|mmol/L",
]
ORU_OUT = [
    "MSH|^~\\&|SIL|LAB|DPI|CHU|20240312101522||ORU^R01^ORU_R01|C1|P|2.5",
    ORU[1],
    "OBX|1|NM|14749-6^Glycémie^LN||6.8|mmol/L",
    "OBX|2|NM|2951-2^Sodium^LN||138|mmol/L",
]


def payload(lines: list[str], charset: str = "utf-8") -> bytes:
    return ("\r".join(lines) + "\r").encode(charset)


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("conf")
    (directory / "channels").mkdir()
    (directory / "engine.yaml").write_text(
        "store:\n  url: sqlite:///var/a.db\nchannels:\n  - channels/*.yaml\n")
    table = ROOT / "samples" / "tables" / "lab-loinc.csv"
    (directory / "channels" / "lab.yaml").write_text(LAB_CHANNEL.format(table=table),
                                                     encoding="utf-8")
    (directory / "channels" / "adt.yaml").write_text(ADT_CHANNEL)
    (directory / "channels" / "strict.yaml").write_text(STRICT_CHANNEL)
    return directory


@pytest.fixture(scope="module")
def config(confdir: Path):
    return load_config(str(confdir / "engine.yaml"))


@pytest.fixture(scope="module")
def lab(config):
    return find_channel(config, "lab")


def channels(config) -> dict:
    return {channel.name: channel for channel in config.channels}


def write_fixture(directory: Path, text: str, name: str = "case.yaml",
                  channel: str = "lab") -> str:
    folder = directory / "fixtures" / channel
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


# -- running a message -----------------------------------------------------------------------

def test_transformed_message_has_each_destination_output(lab):
    """If a message goes through the channel, then each destination shows the text the
    engine would send it: the channel's steps, then its own; one not routed says why."""
    run = run_payload(lab, payload(ORU))
    assert run.status == st.TRANSFORMED
    assert run.output("archive").text.split("\r")[:-1] == ORU_OUT
    dpi = run.output("dpi").text.split("\r")
    assert dpi[0] == ORU_OUT[0].replace("|CHU|", "|CABINET|") and dpi[1:-1] == ORU_OUT[1:]
    never = run.output("never")
    assert never.text is None
    assert never.not_sent == "not sent: the route steps that ran did not name it"


def test_trace_lists_every_top_level_step_with_what_it_changed(lab, confdir):
    """If a message runs, then the trace has one entry per top-level step, filter and
    destination step, each labelled file:line: field, with the segments it changed."""
    run = run_payload(lab, payload(ORU))
    file = str(confdir / "channels" / "lab.yaml")
    shown = [(s.destination, s.label, s.outcome) for s in run.steps]
    assert shown == [
        (None, f"{file}:8: filters[0]", RAN),
        (None, f"{file}:10: steps[0].set", RAN),
        (None, f"{file}:12: steps[1].delete", SKIPPED),
        (None, f"{file}:14: steps[2].for-each", RAN),
        (None, f"{file}:19: steps[3].route", RAN),
        (None, f"{file}:21: steps[4].route", SKIPPED),
        (None, f"{file}:23: steps[5].stop", SKIPPED),
        ("dpi", f"{file}:30: destinations[0].steps[0].set", RAN),
        ("dpi", f"{file}:32: destinations[0].steps[1].stop", SKIPPED),
    ]
    assert run.steps[0].is_filter and not run.steps[1].is_filter
    assert run.steps[1].changes == (f"- {ORU[0]}", f"+ {ORU_OUT[0]}")
    assert run.steps[3].changes == (f"- {ORU[2]}", f"+ {ORU_OUT[2]}",
                                    f"- {ORU[3]}", f"+ {ORU_OUT[3]}")
    assert run.steps[2].changes == ()


def test_filtered_message_is_sent_nowhere(lab):
    """If a filter fails, then the run is FILTERED with the filter's reason, the failing
    filter is traced as stopped, and no destination gets anything."""
    adt = payload([ORU[0].replace("ORU^R01^ORU_R01", "ADT^A01"), ORU[1]])
    run = run_payload(lab, adt)
    assert (run.status, run.reason) == (st.FILTERED, 'filtered by filters[0]: MSH-9.1 == "ORU"')
    assert [s.outcome for s in run.steps] == [STOPPED]
    assert {o.name: o.not_sent for o in run.outputs} == dict.fromkeys(
        ("dpi", "archive", "never"), "not sent: the message is FILTERED")


def test_destination_stop_names_its_step(lab, confdir):
    """If a destination's steps stop the message, then that destination is not sent with the
    stop's reason and step, and the others still are."""
    run = run_payload(lab, payload(ORU[:2] + ["OBX|1|NM|NA^Sodium^L||0"]))
    assert run.status == st.TRANSFORMED
    assert run.output("archive").text is not None
    assert run.output("dpi").not_sent == (
        f"not sent: stopped by its steps ({confdir / 'channels' / 'lab.yaml'}:32: "
        "destinations[0].steps[1].stop): no value for the DPI")


def test_step_failure_is_an_error_naming_step_path_value_and_table(lab):
    """If a code is not in the table, then the run is ERROR with the step, the concrete
    path, the value and the table, the failing step is traced, and nothing is sent."""
    run = run_payload(lab, payload(ORU[:3] + ["OBX|2|NM|XYZ^Inconnu^L||1"]))
    assert run.status == st.ERROR
    assert run.reason.endswith(
        "lab.yaml:16: steps[2].steps[0].translate: OBX[2]-3.1 = 'XYZ': code not in table "
        "lab-loinc")
    assert run.steps[-1].outcome == FAILED and run.steps[-1].note == run.reason
    assert all(o.not_sent == "not sent: the message is in ERROR" for o in run.outputs)


@pytest.mark.parametrize("raw, reason", [
    (b"PID|1||X\r", "the first segment is 'PID', not MSH"),
    (payload(ORU, "latin-1").replace(b"UNICODE", b"X"), "is not valid UNICODE UTF-8"),
])
def test_unreadable_input_is_an_error_as_at_intake(lab, raw, reason):
    """If MSH cannot be read or the bytes are not in the character set, then the run is
    ERROR with the intake's own text, and no step runs."""
    raw = raw.replace(b"|2.5\r", b"|2.5|||||||UNICODE UTF-8\r") if b"MSH" in raw else raw
    run = run_payload(lab, raw)
    assert run.status == st.ERROR and run.steps == ()
    assert reason.lower() in run.reason.lower(), run.reason


def test_routing_only_channel_sends_the_message_as_it_came(config):
    """If a channel only routes, then its destination's output is the message as received,
    decoded with its character set."""
    text = [ORU[0].replace("|2.5", "|2.5|||||||8859/1"), "PID|1||1||LEFÈVRE^Hélène"]
    run = run_payload(find_channel(config, "adt"), payload(text, "latin-1"))
    assert run.status == st.TRANSFORMED and run.steps == ()
    assert run.output("archive").text == "\r".join(text) + "\r"


def test_structural_validation_runs_when_configured(config):
    """If the channel asks for structural validation, then a message that does not conform
    is ERROR with the validator's text, as in the engine."""
    run = run_payload(find_channel(config, "strict"), payload(ORU[:1] + ["ZZZ|1"]))
    assert run.status == st.ERROR
    assert run.reason.startswith("structural validation failed: ")


def test_unknown_channel_lists_the_known_ones(config):
    """If the channel is unknown, then the error says so, with a guess and the known names."""
    with pytest.raises(UnknownChannel, match=r"no channel 'labo' \(did you mean 'lab'\?\); "
                                             r"its channels: adt, lab, strict"):
        find_channel(config, "labo")


def test_pipeline_without_trace_is_unchanged():
    """If decide runs without a trace, then it gives what it gave before; with one, the
    trace is told the destination of destination steps and None for the channel's."""
    from mappings.steps import compile_steps

    steps = compile_steps([{"set": "MSH-5", "value": "X"}], file="c.yaml")
    own = compile_steps([{"set": "MSH-6", "value": "Y"}], file="c.yaml")
    plan = ChannelPlan("c", (DestinationPlan("a", steps=own), DestinationPlan("b")), steps=steps)
    message = InboundMessage(1, "\r".join(ORU) + "\r")
    seen = []
    traced = decide(plan, message, trace=lambda dest, step: seen.append((dest, step.label)))
    assert decide(plan, message) == traced
    assert seen == [(None, "c.yaml: steps[0].set"), ("a", "c.yaml: steps[0].set")]


def test_segment_changes_pair_lines_changed_in_place():
    """If segments are changed, added and removed, then the changes show the old line above
    the new one when counts match, else all removed lines then all added ones."""
    before = "MSH|1\rA|1\rB|1\rC|1\r"
    assert segment_changes(before, "MSH|1\rA|2\rB|1\rC|1\r") == ("- A|1", "+ A|2")
    assert segment_changes(before, "MSH|1\rA|1\rB|1\rC|1\rZ|1\r") == ("+ Z|1",)
    assert segment_changes(before, "MSH|1\rA|1\rC|2\r") == ("- B|1", "- C|1", "+ C|2")


# -- fixtures --------------------------------------------------------------------------------

GOOD = """\
description: Two local codes leave as LOINC
input: |
  {oru}
expect:
  status: TRANSFORMED
  deliveries:
    archive: |
      {out}
    never: null
  values:
    dpi:
      MSH-6: CABINET
      OBX[2]-3.1: "2951-2"
      OBX[*]-3.3: ["LN", "LN"]
      ZZZ-1: ""
"""


def good_fixture(out: list[str] = ORU_OUT) -> str:
    return GOOD.format(oru="\n  ".join(ORU), out="\n      ".join(out))


def test_passing_fixture(confdir, config, lab):
    """If a fixture's expectations hold, then it passes, named <channel>/<case>."""
    path = write_fixture(confdir, good_fixture(), "two-codes.yaml")
    fixture = load_fixture(path, channels(config))
    assert (fixture.name, fixture.channel) == ("lab/two-codes", "lab")
    outcome = check_fixture(fixture, lab)
    assert outcome.passed, failure_text(outcome)
    assert failure_text(outcome) == "PASS lab/two-codes: Two local codes leave as LOINC"


def test_failing_fixture_shows_a_diff_per_destination(confdir, config, lab):
    """If the output differs, then the fixture fails with a unified diff of expected vs
    actual segments, each wrong value named, and the steps that ran."""
    wrong = ORU_OUT[:2] + [ORU_OUT[2].replace("14749-6", "2345-7")] + ORU_OUT[3:]
    text = good_fixture(wrong).replace('MSH-6: CABINET', 'MSH-6: DPI')
    path = write_fixture(confdir, text, "wrong.yaml")
    outcome = check_fixture(load_fixture(path, channels(config)), lab)
    assert not outcome.passed
    report = failure_text(outcome).splitlines()
    assert report[0] == f"FAIL lab/wrong: Two local codes leave as LOINC ({path})"
    assert report[1:7] == [
        "  archive: the output differs from the one expected:",
        "    --- expected (archive)",
        "    +++ actual (archive)",
        "    @@ -2,3 +2,3 @@",
        f"     {ORU_OUT[1]}",
        f"    -{wrong[2]}",
    ]
    assert f"    +{ORU_OUT[2]}" in report
    assert "  dpi MSH-6: expected 'DPI', got 'CABINET'" in report
    assert "  steps (TRANSFORMED):" in report


def test_fixture_expecting_filtered_or_error(confdir, config, lab):
    """If a fixture expects FILTERED or ERROR with a reason, then the status and a part of
    the reason are checked; a wrong status fails with the actual one and its reason."""
    unknown = "\n  ".join(ORU[:3] + ["OBX|2|NM|XYZ^Inconnu^L||1"])
    error = write_fixture(confdir, (
        "description: An unknown code is an error\n"
        f"input: |\n  {unknown}\n"
        "expect:\n"
        "  status: ERROR\n"
        "  reason: \"steps[2].steps[0].translate: OBX[2]-3.1 = 'XYZ': code not in table "
        "lab-loinc\"\n"
        "  deliveries:\n"
        "    archive: null\n"), "error.yaml")
    assert check_fixture(load_fixture(error, channels(config)), lab).passed
    adt = ORU[0].replace("ORU^R01", "ADT^A01")
    filtered = write_fixture(confdir, (
        "description: Not a result\n"
        f"input: '{adt}'\n"
        "expect:\n"
        "  status: FILTERED\n"
        "  reason: MSH-9.1\n"), "filtered.yaml")
    assert check_fixture(load_fixture(filtered, channels(config)), lab).passed
    wrong = write_fixture(confdir, good_fixture().replace("status: TRANSFORMED",
                                                          "status: FILTERED"), "status.yaml")
    outcome = check_fixture(load_fixture(wrong, channels(config)), lab)
    assert outcome.failures[0].text == "status: expected FILTERED, got TRANSFORMED"


def test_input_file_and_inline_charset(confdir, config):
    """If the input is inline, then it is sent in the character set MSH-18 names (8859/1
    here); if it is a file, then the file's message is sent as ``send`` would."""
    adt = find_channel(config, "adt")
    lines = [ORU[0].replace("|2.5", "|2.5|||||||8859/1"), "PID|1||1||LEFÈVRE^Hélène"]
    inline = write_fixture(confdir, "description: x\ninput: |\n  " + "\n  ".join(lines)
                           + "\n", "inline.yaml", channel="adt")
    fixture = load_fixture(inline, channels(config))
    assert fixture.payload == payload(lines, "latin-1")
    message = confdir / "fixtures" / "adt" / "a.hl7"
    message.write_bytes(payload(lines, "latin-1").replace(b"\r", b"\r\n"))
    from_file = write_fixture(confdir, "description: y\ninput-file: a.hl7\nexpect:\n  values:\n"
                              "    archive:\n      PID-5.2: Hélène\n", "file.yaml", "adt")
    fixture = load_fixture(from_file, channels(config))
    assert fixture.payload == payload(lines, "latin-1")
    assert check_fixture(fixture, adt).passed


def test_bad_fixture_is_refused_with_every_problem_at_its_line(confdir, config):
    """If a fixture is badly written, then loading it lists every problem at file:line."""
    path = write_fixture(confdir, """\
        descripton: typo
        input: |
          MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5
        expect:
          status: DONE
          deliveries:
            archve: null
          values:
            dpi:
              OBX[1-3: x
              OBX[1]-5: 6.8
              OBX[*]-3.3: LN
        """, "bad.yaml")
    with pytest.raises(FixtureError) as caught:
        load_fixture(path, channels(config))
    assert caught.value.problems == [
        f"{path}:1: descripton: unknown key (did you mean 'description'?); expected "
        "description, channel, input, input-file, expect",
        f"{path}:1: description: expected one line saying what this case shows",
        f"{path}:5: expect.status: expected one of TRANSFORMED, FILTERED, ERROR, not 'DONE'",
        f"{path}:7: expect.deliveries: the channel has no destination 'archve' (did you mean "
        "'archive'?); its destinations: archive, dpi, never",
        f"{path}:10: expect.values.dpi.OBX[1-3: expected ']' at column 6 in path 'OBX[1-3'",
        f"{path}:11: expect.values.dpi.OBX[1]-5: expected text, not 6.8 (write it in quotes)",
        f"{path}:12: expect.values.dpi.OBX[*]-3.3: a [*] path takes the list of values "
        'present, such as ["LN", "LN"]',
    ]


@pytest.mark.parametrize("text, problem", [
    ("description: x\n", ":1: a fixture needs input (the message) or input-file"),
    ("description: x\ninput-file: nowhere.hl7\n", ":2: input-file: cannot read "),
    ("description: x\ninput: |\n  MSH|^~\\&|A\n  MSH|^~\\&|B\n",
     ":2: input: holds 2 messages; a fixture is one message"),
    ("description: x\nchannel: nope\ninput: MSH\n", ":2: no channel 'nope' (named by its "
                                                    "channel:); the channels: adt, lab, strict"),
    ("description: |\n  two\n  lines\ninput: MSH\n", ":1: description: expected one line"),
    ("description: x\ndescription: y\ninput: MSH\n", ":2: 'description' is written twice"),
    ("description: x\ninput: [\n", ":3: invalid YAML"),
])
def test_bad_fixture_problems(confdir, config, text, problem):
    """If a fixture lacks its input, names a missing file, holds two messages, names an
    unknown channel, a multi-line description or a duplicate key, or is not YAML, then it is
    refused at the line."""
    path = write_fixture(confdir, text, "refused.yaml")
    with pytest.raises(FixtureError) as caught:
        load_fixture(path, channels(config))
    assert any(line.startswith(path + problem) for line in caught.value.problems), \
        caught.value.problems


def test_fixture_for_another_channel_is_refused_when_one_is_named(confdir, config, tmp_path):
    """If the command names a channel and the fixture is for another (its channel: or its
    folder), then it is refused; a fixture outside the channels' folders is for the one
    the command names."""
    path = write_fixture(confdir, "description: x\nchannel: adt\ninput: MSH\n", "other.yaml")
    with pytest.raises(FixtureError, match=r"other.yaml:2: this fixture is for channel 'adt' "
                                           r"\(named by its channel:\), not 'lab'"):
        load_fixture(path, channels(config), default_channel="lab")
    path = write_fixture(confdir, "description: x\ninput: MSH\n", "folder.yaml", "adt")
    with pytest.raises(FixtureError, match=r"folder.yaml:1: this fixture is for channel 'adt' "
                                           r"\(named by the folder it is in\), not 'lab'"):
        load_fixture(path, channels(config), default_channel="lab")
    loose = tmp_path / "loose.yaml"
    loose.write_text("description: x\ninput: MSH\n")
    assert load_fixture(str(loose), channels(config), default_channel="lab").name == "lab/loose"


# -- the command -----------------------------------------------------------------------------

def invoke(confdir: Path, *args: str):
    return CliRunner().invoke(main, ["test-channel", "--config", str(confdir / "engine.yaml"),
                                     *args], catch_exceptions=False)


@pytest.fixture()
def cmddir(tmp_path: Path, confdir: Path) -> Path:
    """The module's configuration, without the fixtures other tests wrote."""
    for name in ("engine.yaml", "channels/lab.yaml", "channels/adt.yaml",
                 "channels/strict.yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes((confdir / name).read_bytes())
    return tmp_path


def test_command_passes_the_channel_fixtures(cmddir):
    """If every fixture of fixtures/CHANNEL/ passes, then test-channel prints PASS lines and
    exits 0, with no colour codes when the output is not a terminal."""
    write_fixture(cmddir, good_fixture(), "a.yaml")
    write_fixture(cmddir, good_fixture(), "b.yaml")
    result = invoke(cmddir, "lab")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PASS lab/a: Two local codes leave as LOINC", "PASS lab/b: Two local codes leave as LOINC",
        "2 passed, 0 failed"]
    assert fixture_files(str(cmddir / "engine.yaml"), "lab") == [
        str(cmddir / "fixtures" / "lab" / "a.yaml"), str(cmddir / "fixtures" / "lab" / "b.yaml")]


def test_command_exits_1_when_a_fixture_fails(cmddir):
    """If a fixture fails, then test-channel exits 1 after running the others; its diff is
    coloured on a terminal only."""
    write_fixture(cmddir, good_fixture(), "a.yaml")
    write_fixture(cmddir, good_fixture(ORU), "b.yaml")
    result = invoke(cmddir, "lab")
    assert result.exit_code == 1
    assert "FAIL lab/b: Two local codes leave as LOINC" in result.output
    assert "\x1b[" not in result.output
    assert result.output.splitlines()[-1] == "1 passed, 1 failed"
    coloured = CliRunner().invoke(main, ["test-channel", "--config",
                                         str(cmddir / "engine.yaml"), "lab"], color=True)
    assert "\x1b[31m    -" in coloured.output and "\x1b[32m    +" in coloured.output


def test_command_exits_2_for_a_bad_fixture_or_channel(cmddir):
    """If a fixture cannot be run, or the channel is unknown, then test-channel exits 2
    naming the problem."""
    write_fixture(cmddir, good_fixture(), "a.yaml")
    bad = write_fixture(cmddir, "description: x\n", "z.yaml")
    result = invoke(cmddir, "lab")
    assert result.exit_code == 2
    assert f"{bad}:1: a fixture needs input" in result.output
    assert result.output.splitlines()[-1] == "1 passed, 0 failed, 1 refused"
    result = invoke(cmddir, "nope")
    assert result.exit_code == 2
    assert "no channel 'nope'; its channels: adt, lab, strict" in result.output


def test_command_exits_2_when_its_channel_does_not_load(cmddir):
    """If the channel tested has configuration errors, then test-channel exits 2 with them."""
    lab = (cmddir / "channels" / "lab.yaml").read_text()
    (cmddir / "channels" / "lab.yaml").write_text(lab.replace("set: MSH-5", "set: MSH-5-1"))
    result = invoke(cmddir, "lab")
    assert result.exit_code == 2
    assert "configuration errors (1)" in result.output and "MSH-5-1" in result.output


def test_command_leaves_another_broken_channel_out(cmddir):
    """If another channel file has errors, then test-channel runs this one and warns."""
    (cmddir / "channels" / "adt.yaml").write_text(ADT_CHANNEL.replace("name: adt", "nam: adt"))
    write_fixture(cmddir, good_fixture(), "a.yaml")
    result = invoke(cmddir, "lab")
    assert result.exit_code == 0, result.output
    assert "adt.yaml is left out: 2 configuration error(s)" in result.output
    assert "PASS lab/a" in result.output


def test_command_without_fixtures_exits_1(cmddir):
    """If the channel has no fixture and no file is named, then nothing is tested: exit 1."""
    result = invoke(cmddir, "adt")
    assert result.exit_code == 1
    assert "no fixture in" in result.output


def test_command_runs_message_files_and_prints_trace_and_outputs(cmddir):
    """If FILEs are messages, then each message's status, steps (with their changes) and
    outputs are printed, and the exit code is 0 whatever their outcome."""
    messages = cmddir / "two.hl7"
    messages.write_bytes(payload(ORU) + b"\n" + payload([ORU[0].replace("ORU^R01", "ADT^A01")]))
    result = invoke(cmddir, "lab", str(messages))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{messages}#1 -> lab: TRANSFORMED"
    assert f"      - {ORU[2]}" in lines and f"      + {ORU_OUT[2]}" in lines
    assert "  destination archive:" in lines and f"    {ORU_OUT[2]}" in lines
    assert "  destination never: not sent: the route steps that ran did not name it" in lines
    assert f"{messages}#2 -> lab: FILTERED" in lines
