"""
Tests for ``include:`` steps: mapping files read by engine.config.includes at load, compiled inline
by mappings.steps, with their own file:line in every problem and failure.

test-case-name: tests.config.test_includes
"""
from __future__ import annotations

import os
import textwrap

import pytest

from engine.config.loader import ConfigError, load_channel_file
from mappings.message import HL7Message
from mappings.steps import IncludedSteps, StepFailure, StepsError, compile_steps
from engine.config.yamlsource import parse_yaml
from tests.config.test_loader import SPECS

MESSAGE = ("MSH|^~\\&|GAM|CHU|AIG|CHU|20240312083015||ADT^A01^ADT_A01|1|P|2.5\r"
           "PID|1||00451203^^^CHU^PI||LEFÈVRE^Hélène||19850714|F\r"
           "PV1|1|I\r"
           "ZBE|451001^CHU|20240312083000||INSERT|N\r")

CHANNEL = """\
name: adt
source:
  type: mllp
  port: 0
destinations:
  - name: out
    type: file
    directory: out
"""


def write(root, relative: str, text: str) -> str:
    path = os.path.join(str(root), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return path


def channel(tmp_path, steps: str, extra: str = "") -> str:
    return write(tmp_path, "channels/adt.yaml", CHANNEL + extra + "steps:\n"
                 + textwrap.indent(textwrap.dedent(steps), "  "))


def problems(path: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_channel_file(path, SPECS)
    return [str(problem) for problem in caught.value.problems]


def run(program, text: str = MESSAGE) -> str:
    message = HL7Message.parse(text)
    program.run(message)
    return message.to_text()


def test_included_steps_run_in_place_in_order(tmp_path):
    """If a channel includes a mapping file between two steps, then its steps run there."""
    write(tmp_path, "mappings/practice.yaml", """\
        description: for the practice
        steps:
          - set: MSH-5
            value-from: PV1-2
          - delete: ZBE[*]
        """)
    path = channel(tmp_path, """\
        - set: PV1-2
          value: O
        - include: ../mappings/practice.yaml
        - set: PV1-2
          value: I
        """)
    loaded = load_channel_file(path, SPECS)
    assert len(loaded.steps) == 4
    assert run(loaded.steps).split("\r")[:3] == [
        "MSH|^~\\&|GAM|CHU|O|CHU|20240312083015||ADT^A01^ADT_A01|1|P|2.5",
        "PID|1||00451203^^^CHU^PI||LEFÈVRE^Hélène||19850714|F", "PV1|1|I"]


def test_nested_includes_and_tables_merge(tmp_path):
    """If a mapping file includes another one that defines a table, then the table is the
    channel's too, and the innermost steps run where the include chain puts them."""
    write(tmp_path, "tables/sex.yaml", "codes:\n  F: Femme\n  M: Homme\n")
    write(tmp_path, "mappings/outer.yaml", """\
        steps:
          - include: inner/sex.yaml
          - for-each: PID-3[*]
            steps:
              - include: inner/ids.yaml
        """)
    write(tmp_path, "mappings/inner/sex.yaml", """\
        tables:
          sex: ../../tables/sex.yaml
        steps:
          - translate: PID-8
            table: sex
        """)
    write(tmp_path, "mappings/inner/ids.yaml", """\
        steps:
          - set: PID-3.4
            value: CHU-EXEMPLE
        """)
    path = channel(tmp_path, """\
        - include: ../mappings/outer.yaml
        - translate: PID-8
          table: sex
          on-unknown: keep
        """, extra="tables:\n  sex: ../tables/sex.yaml\n")
    loaded = load_channel_file(path, SPECS)
    assert set(loaded.tables) == {"sex"}
    assert run(loaded.steps).split("\r")[1] == \
        "PID|1||00451203^^^CHU-EXEMPLE^PI||LEFÈVRE^Hélène||19850714|Femme"


def test_a_destination_may_include_a_file(tmp_path):
    """If a destination's steps include a file, then it is compiled for that destination."""
    write(tmp_path, "mappings/strip.yaml", "steps:\n  - delete: ZBE[*]\n")
    path = write(tmp_path, "channels/adt.yaml", CHANNEL + "    steps:\n"
                 "      - include: ../mappings/strip.yaml\n")
    loaded = load_channel_file(path, SPECS)
    assert loaded.steps is None
    assert "ZBE" not in run(loaded.destinations[0].steps)


def test_problems_inside_an_included_file_name_that_file_and_line(tmp_path):
    """If an included file has mistakes, then each names the file's own line and field."""
    mapping = write(tmp_path, "mappings/bad.yaml", """\
        steps:
          - set: PID-5-1
            value: X
          - translate: PID-8
            table: sexe
        """)
    path = channel(tmp_path, "- include: ../mappings/bad.yaml\n- sett: MSH-5\n")
    found = problems(path)
    shown = os.path.normpath(mapping)
    assert any(p.startswith(f"{shown}:2: steps[0].set: unexpected '-'") for p in found), found
    assert any(p.startswith(f"{shown}:5: steps[1].table: unknown table 'sexe'")
               for p in found), found
    assert any(p.startswith(f"{path}:11: steps[1]: no operation") for p in found), found


def test_failures_at_run_time_name_the_included_file(tmp_path):
    """If an included step fails on a message, then the failure names the included file."""
    mapping = write(tmp_path, "mappings/dates.yaml", """\
        steps:
          - format: PID-7
            with: dtm-to-iso
        """)
    loaded = load_channel_file(channel(tmp_path, "- include: ../mappings/dates.yaml\n"), SPECS)
    with pytest.raises(StepFailure) as caught:
        run(loaded.steps, MESSAGE.replace("19850714", "19850230"))
    assert str(caught.value).startswith(
        f"{os.path.normpath(mapping)}:2: steps[0].format: PID-7 = '19850230'")


def test_a_missing_file_is_named_at_the_include(tmp_path):
    """If the included file does not exist, then the error is at the including line."""
    path = channel(tmp_path, "- delete: ZBE[*]\n- include: ../mappings/absente.yaml\n")
    found = problems(path)
    assert found == [f"{path}:11: steps[1].include: no mapping file "
                     f'"../mappings/absente.yaml" (looked for '
                     f'{os.path.join(str(tmp_path), "mappings", "absente.yaml")})']


def test_a_cycle_is_named_at_the_include_that_closes_it(tmp_path):
    """If two files include each other, then the include that closes the cycle is refused."""
    first = write(tmp_path, "mappings/a.yaml", "steps:\n  - include: b.yaml\n")
    second = write(tmp_path, "mappings/b.yaml", "steps:\n  - delete: ZBE[*]\n  - include: a.yaml\n")
    path = channel(tmp_path, "- include: ../mappings/a.yaml\n")
    a, b = os.path.normpath(first), os.path.normpath(second)
    assert problems(path) == [f"{b}:3: steps[1].include: include cycle: {a} includes {b} "
                              f"includes {a}"]


def test_a_file_including_itself_is_a_cycle(tmp_path):
    """If a mapping file includes itself, then that include is refused."""
    mapping = write(tmp_path, "mappings/self.yaml", "steps:\n  - include: self.yaml\n")
    shown = os.path.normpath(mapping)
    assert problems(channel(tmp_path, "- include: ../mappings/self.yaml\n")) == [
        f"{shown}:2: steps[0].include: include cycle: {shown} includes {shown}"]


def test_one_file_included_twice_is_not_a_cycle(tmp_path):
    """If two includes name the same file, then it is compiled twice, both in place."""
    write(tmp_path, "mappings/mark.yaml", "steps:\n  - set: PID-6\n    value-from: PID-5\n")
    loaded = load_channel_file(channel(tmp_path, "- include: ../mappings/mark.yaml\n"
                                                 "- set: PID-5\n  value: X\n"
                                                 "- include: ../mappings/mark.yaml\n"), SPECS)
    assert run(loaded.steps).split("\r")[1] == "PID|1||00451203^^^CHU^PI||X^Hélène|X|19850714|F"


def test_a_table_name_given_two_files_is_an_error(tmp_path):
    """If a mapping file defines a table the channel defines with another file, then it is
    refused at the mapping file's line, naming the channel's definition."""
    write(tmp_path, "tables/sex.yaml", "codes:\n  F: Femme\n")
    write(tmp_path, "tables/other.yaml", "codes:\n  F: F\n")
    mapping = write(tmp_path, "mappings/m.yaml", """\
        tables:
          sex: ../tables/other.yaml
          same: ../tables/sex.yaml
        steps:
          - translate: PID-8
            table: sex
        """)
    path = channel(tmp_path, "- include: ../mappings/m.yaml\n",
                   extra="tables:\n  sex: ../tables/sex.yaml\n")
    assert problems(path) == [
        f'{os.path.normpath(mapping)}:2: tables.sex: table "sex" is already defined by '
        f"{path}:10 with another file ({os.path.join(str(tmp_path), 'tables', 'sex.yaml')})"]


def test_the_mapping_file_itself_is_checked(tmp_path):
    """If a mapping file has an unknown key, no steps, or an include with when, then each is
    reported with its line."""
    write(tmp_path, "mappings/nosteps.yaml", "description: rien\nstep: []\n")
    write(tmp_path, "mappings/when.yaml", "steps:\n  - include: nosteps.yaml\n"
                                          "    when: exists(ZBE)\n")
    path = channel(tmp_path, "- include: ../mappings/when.yaml\n- include: 12\n")
    found = problems(path)
    nosteps = os.path.join(str(tmp_path), "mappings", "nosteps.yaml")
    when = os.path.join(str(tmp_path), "mappings", "when.yaml")
    assert f'{nosteps}:2: step: unknown option "step" (did you mean "steps"?)' in found
    assert any(p.startswith(f"{nosteps}") and 'missing required option "steps"' in p
               for p in found), found
    assert f"{when}:3: steps[0].when: include takes no when: put the condition on the " \
           "included steps" in found
    assert any(p.startswith(f"{path}:11: steps[1].include: expected the path of a mapping")
               for p in found), found


def test_a_route_in_an_included_file_is_checked_against_the_channel(tmp_path):
    """If an included file routes to a destination the channel lacks, then it is refused."""
    mapping = write(tmp_path, "mappings/route.yaml", "steps:\n  - route: dpi\n")
    found = problems(channel(tmp_path, "- include: ../mappings/route.yaml\n"))
    assert found == [f"{os.path.normpath(mapping)}:2: steps[0].route: route names the "
                     'destination "dpi", which this channel does not have; its '
                     "destinations: out"]


def test_the_language_needs_a_resolver_and_reports_its_lookup_errors():
    """If compile_steps has no resolver, an include is refused; a resolver's LookupError is
    reported at the include; its steps are compiled with the file it names."""
    steps = parse_yaml("steps:\n  - include: x.yaml\n").root["steps"]
    with pytest.raises(StepsError) as caught:
        compile_steps(steps, file="c.yaml")
    assert str(caught.value) == ("c.yaml:2: steps[0].include: include needs the configuration "
                                 "loader to read the mapping file; none was given")

    def missing(text, from_file):
        raise LookupError(f"no {text} next to {from_file}")

    with pytest.raises(StepsError) as caught:
        compile_steps(steps, file="c.yaml", include=missing)
    assert str(caught.value) == "c.yaml:2: steps[0].include: no x.yaml next to c.yaml"
    inner = parse_yaml("steps:\n  - sett: PID-5\n").root["steps"]
    with pytest.raises(StepsError) as caught:
        compile_steps(steps, file="c.yaml",
                      include=lambda text, where: IncludedSteps("m/x.yaml", inner))
    assert str(caught.value).startswith("m/x.yaml:2: steps[0]: no operation")


def test_a_mistake_in_a_file_included_twice_is_reported_once(tmp_path):
    """If a file with a mistake is included twice, then the mistake is listed once."""
    mapping = write(tmp_path, "mappings/bad.yaml", "steps:\n  - sett: PID-5\n")
    found = problems(channel(tmp_path, "- include: ../mappings/bad.yaml\n"
                                       "- include: ../mappings/bad.yaml\n"))
    assert len(found) == 1 and found[0].startswith(f"{os.path.normpath(mapping)}:2: steps[0]")
