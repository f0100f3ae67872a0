"""
Tests for channels with mappings: ``tables:``, ``filters:``, ``steps:``, destination
``steps:`` and ``validation:`` loaded and compiled by engine.config.loader (every problem reported
with its file and line), and decided by engine.flow.decision.decide.

Pipeline tests use small Program-like objects, so that they test the engine's side of the
contract of mappings.steps (Program.run -> RunOutcome, StepFailure) and nothing else; the
configuration tests compile real steps.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from engine import status as st
from engine.app import channel_plan
from engine.config.loader import ConfigError, load_channel_file
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.store.records import NewDelivery
from tests.config.test_loader import SPECS

TEXT = ("MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A08^ADT_A01|7|P|2.5\r"
        "EVN|A08|20260101\rPID|1||P42^^^HOSP||DOE^JOHN||19700101|M\rPV1|1|I\r")


# -- Program-like objects: the mappings.steps contract ------------------------------------

@dataclass(frozen=True)
class Outcome:
    stopped: bool = False
    reason: str | None = None
    routes: frozenset | None = None


class SetPID8:
    """A program setting PID-8 (sex) to ``value``, by rewriting the segment text."""

    def __init__(self, value: str):
        self.value = value

    def run(self, message):
        pid = message.segment("PID")
        pid.set_field(8, self.value)
        return Outcome()


class Stop:
    def __init__(self, reason: str):
        self.reason = reason

    def run(self, message):
        return Outcome(stopped=True, reason=self.reason)


class Route:
    def __init__(self, *names: str):
        self.names = frozenset(names)
        self.routes_named = self.names

    def run(self, message):
        return Outcome(routes=self.names)


class Fail:
    def run(self, message):
        from mappings.steps import StepFailure
        raise StepFailure("ch.yaml", 9, "steps[0].translate", "code not in table sex",
                          path="PID-8", value="Z")


class Boom:
    def run(self, message):
        raise _Failure("ch.yaml:9: steps[0].translate: PID-8 = 'Z': code not in table sex")


class _Failure(Exception):
    pass


def message(text: str = TEXT, **kwargs) -> InboundMessage:
    return InboundMessage(7, text, raw=text.encode("utf-8"), charset="UNICODE UTF-8", **kwargs)


def plan(*destinations: DestinationPlan, **kwargs) -> ChannelPlan:
    return ChannelPlan("adt", destinations or (DestinationPlan("a"), DestinationPlan("b")),
                       **kwargs)


# -- pipeline -----------------------------------------------------------------------------

def test_routes_only_without_mappings():
    """If a channel has no filter, step, destination step or validation, then its plan only
    routes; any one of them makes it run steps."""
    assert plan().routes_only
    assert not plan(filters=SetPID8("F")).routes_only
    assert not plan(steps=SetPID8("F")).routes_only
    assert not plan(validation="structure").routes_only
    assert not plan(DestinationPlan("a", steps=SetPID8("F"))).routes_only


def test_unchanged_message_stores_no_payload():
    """If the steps leave the message as it was, then its deliveries carry no payload (the
    raw message is sent, not stored twice)."""
    result = decide(plan(steps=SetPID8("M")), message())
    assert result.status == st.TRANSFORMED
    assert result.deliveries == (NewDelivery("a"), NewDelivery("b"))


def test_channel_steps_change_every_payload():
    """If channel steps change the message, then every delivery carries the changed bytes."""
    result = decide(plan(steps=SetPID8("F")), message())
    expected = TEXT.replace("|19700101|M", "|19700101|F").encode()
    assert [d.payload for d in result.deliveries] == [expected, expected]


def test_destination_steps_apply_to_their_destination_only():
    """If one destination has steps, then only its delivery carries the changed bytes, and
    the channel's steps run before them."""
    channel = plan(DestinationPlan("a", steps=SetPID8("U")), DestinationPlan("b"),
                   steps=SetPID8("F"))
    result = decide(channel, message())
    payloads = {d.destination: d.payload for d in result.deliveries}
    assert payloads["a"] == TEXT.replace("|19700101|M", "|19700101|U").encode()
    assert payloads["b"] == TEXT.replace("|19700101|M", "|19700101|F").encode()


def test_payload_encoded_with_the_message_charset():
    """If the message's charset is 8859/1, then the payload is written in Latin-1."""
    text = TEXT.replace("DOE^JOHN", "DUPRÉ^JOSÉ")
    inbound = InboundMessage(7, text, raw=text.encode("latin-1"), charset="8859/1")
    result = decide(plan(steps=SetPID8("F")), inbound)
    assert result.deliveries[0].payload == text.replace("|M\r", "|F\r").encode("latin-1")


def test_unencodable_payload_is_an_error():
    """If a mapping writes a character the message's charset cannot hold, then the message
    is in ERROR saying so."""
    result = decide(plan(steps=SetPID8("€")),
                     InboundMessage(7, TEXT, raw=TEXT.encode(), charset="8859/1"))
    assert result.status == st.ERROR and "8859/1" in result.error


def test_filter_stop_is_filtered_with_its_reason():
    """If a filter stops the message, then it is FILTERED with the reason and no delivery,
    and the channel steps do not run."""
    result = decide(plan(filters=Stop("filtered by filters[0]: PV1-2 == \"O\""),
                          steps=Fail()), message())
    assert (result.status, result.deliveries) == (st.FILTERED, ())
    assert result.detail == 'filtered by filters[0]: PV1-2 == "O"' and result.error is None


def test_step_failure_is_an_error_naming_it():
    """If a channel step fails, then the message is in ERROR with the failure's text."""
    pytest.importorskip("mappings.steps")
    result = decide(plan(steps=Fail()), message())
    assert result.status == st.ERROR and result.deliveries == ()
    assert "steps[0].translate" in result.error and "PID-8" in result.error
    assert "'Z'" in result.error or "Z" in result.error


def test_other_exceptions_are_an_error_naming_them():
    """If a step raises something other than StepFailure (a bug), then the decision is ERROR
    naming the exception's type and text: the message is stored, not lost."""
    result = decide(plan(steps=Boom()), message())
    assert (result.status, result.deliveries) == (st.ERROR, ())
    assert result.error.startswith("_Failure: ch.yaml:9: steps[0].translate")


def test_route_restricts_destinations():
    """If a route step ran, then only the destinations it names get a delivery."""
    result = decide(plan(steps=Route("b")), message())
    assert result.deliveries == (NewDelivery("b"),)


def test_destination_stop_skips_only_that_destination():
    """If a destination's steps stop, then that destination gets no delivery; when every
    destination stopped, the message is FILTERED."""
    result = decide(plan(DestinationPlan("a", steps=Stop("not for a")), DestinationPlan("b")),
                     message())
    assert result.status == st.TRANSFORMED and result.deliveries == (NewDelivery("b"),)
    assert "not for a" in result.detail
    result = decide(plan(DestinationPlan("a", steps=Stop("no"))), message())
    assert (result.status, result.deliveries) == (st.FILTERED, ())


def test_unparsable_message_is_an_error():
    """If the text cannot be parsed, then the message is in ERROR."""
    result = decide(plan(steps=SetPID8("F")), message("PID|1\r"))
    assert result.status == st.ERROR and "parsed" in result.error


def test_structure_validation():
    """If validation is structure, then a conforming message passes and one missing a
    required segment is in ERROR with hl7apy's text."""
    pytest.importorskip("hl7apy")
    assert decide(plan(validation="structure"), message()).status == st.TRANSFORMED
    bad = TEXT.replace("EVN|A08|20260101\r", "")
    result = decide(plan(validation="structure"), message(bad))
    assert result.status == st.ERROR
    assert "structural validation failed" in result.error and "EVN" in result.error


def test_structure_validation_as_the_channel_version():
    """If a sender labels its messages with a version the validator does not know (2.9),
    then they fail validation, unless the channel's version says which structures to check
    them against; the message itself keeps its MSH-12."""
    pytest.importorskip("hl7apy")
    newer = message(TEXT.replace("|P|2.5\r", "|P|2.9\r"))
    refused = decide(plan(validation="structure"), newer)
    assert refused.status == st.ERROR and "2.9" in refused.error
    accepted = decide(plan(validation="structure", version="2.5"), newer)
    assert accepted.status == st.TRANSFORMED
    assert all(d.payload is None for d in accepted.deliveries)  # sent as received: 2.9
    missing_evn = message(TEXT.replace("|P|2.5\r", "|P|2.9\r").replace("EVN|A08|20260101\r", ""))
    assert decide(plan(validation="structure", version="2.5"), missing_evn).status == st.ERROR


@pytest.mark.parametrize("text, expected", [
    ("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.9\rPID|1",
     "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1"),
    ("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.9^FRA^2.1",
     "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5^FRA^2.1"),
    ("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P", "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5"),
    ("MSH#$%!&#A", "MSH#$%!&#A" + "#" * 9 + "2.5"),
    ("PID|1", "PID|1"),
])
def test_with_version(text, expected):
    """If MSH-12 is relabelled, then only its first component changes, and it is added when
    absent; text without MSH is left alone."""
    from engine.flow.decision import with_version

    assert with_version(text, "2.5") == expected


# -- configuration ------------------------------------------------------------------------

CHANNEL = """\
    name: adt
    source:
      type: mllp
      port: 2575
    tables:
      sex: tables/sex.csv
    filters:
      - 'MSH-9.1 == "ADT"'
    steps:
      - translate: PID-8
        table: sex
        on-unknown: error
    destinations:
      - name: dpi
        type: file
        directory: /srv/dpi
        steps:
          - set: PID-5.1
            value: ANONYMOUS
      - name: archive
        type: file
        directory: /srv/archive
    """


def write_channel(tmp_path, text: str = CHANNEL, table: str | None = "local,code\nM,male\n"):
    (tmp_path / "tables").mkdir(exist_ok=True)
    if table is not None:
        (tmp_path / "tables" / "sex.csv").write_text(table)
    path = tmp_path / "adt.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def steps_module():
    return pytest.importorskip("mappings.steps")


def test_channel_with_mappings_loads(tmp_path, steps_module):
    """If a channel has tables, filters, steps and destination steps, then they are loaded
    and compiled, and its plan carries them (so it does not only route)."""
    channel = load_channel_file(write_channel(tmp_path), SPECS)
    assert set(channel.tables) == {"sex"} and "M" in channel.tables["sex"]
    assert channel.filters is not None and channel.steps is not None
    assert channel.destinations[0].steps is not None and channel.destinations[1].steps is None
    assert channel.validation == "none" and channel.has_mappings
    channel_plan_ = channel_plan(channel)
    assert not channel_plan_.routes_only
    result = decide(channel_plan_, message())
    assert result.status == st.TRANSFORMED
    dpi, archive = result.deliveries
    assert b"|ANONYMOUS^JOHN|" in dpi.payload and b"|male" in dpi.payload
    assert b"|DOE^JOHN|" in archive.payload and b"|male" in archive.payload


def test_channel_without_mappings_routes_only(tmp_path):
    """If a channel has none of the new sections, then nothing changes: it only routes."""
    text = CHANNEL.split("    tables:")[0] + CHANNEL.split("        on-unknown: error\n")[1]
    text = text.replace("        steps:\n          - set: PID-5.1\n            value: ANONYMOUS\n",
                        "")
    channel = load_channel_file(write_channel(tmp_path, text), SPECS)
    assert not channel.has_mappings and channel_plan(channel).routes_only


def test_every_mapping_problem_reported_with_file_and_line(tmp_path, steps_module):
    """If a channel has a bad table row, an unknown table, a bad path, a bad expression, an
    unknown step and a route to a missing destination, then ConfigError lists every one
    with its file and line, together with the other problems of the file."""
    text = CHANNEL.replace("table: sex", "table: gender").replace(
        "'MSH-9.1 == \"ADT\"'", "'MSH-9.1 === \"ADT\"'").replace(
        "set: PID-5.1", "set: PID-5..1").replace(
        "      - name: archive\n", "      - name: archive\n        steps:\n"
        "          - frobnicate: PID-3\n").replace(
        "steps:\n      - translate", "steps:\n      - route: [dpi, nowhere]\n      - translate"
    ).replace("port: 2575", "port: 99999")
    path = write_channel(tmp_path, text, table="local,code\nM,male\nM,female\n")
    with pytest.raises(ConfigError) as raised:
        load_channel_file(path, SPECS)
    lines = [str(p) for p in raised.value.problems]
    table = str(tmp_path / "tables" / "sex.csv")
    report = "\n".join(lines)
    assert any(line.startswith(f"{table}:3:") for line in lines), report
    expected = {
        "source.port": 4, "filters[0]": 8, "steps[0]": 10, "steps[1].table": 12,
        "destinations[0].steps[0]": 19, "destinations[1].steps[0]": 23,
        "steps[0].route": 10,
    }
    for field, line in expected.items():
        assert any(p.field.startswith(field) and p.line == line and p.file == str(path)
                   for p in raised.value.problems), f"{field} at line {line}:\n{report}"
    assert 'route names the destination "nowhere"' in report
    assert "unknown table 'gender'" in report


def test_table_path_must_be_text(tmp_path, steps_module):
    """If a table's path is not a string, or the file is missing, then each is reported."""
    text = CHANNEL.replace("sex: tables/sex.csv", "sex: tables/missing.csv\n      other: 3")
    with pytest.raises(ConfigError) as raised:
        load_channel_file(write_channel(tmp_path, text), SPECS)
    report = str(raised.value)
    assert "tables.other: expected the path" in report
    assert "missing.csv: cannot read the file" in report


def test_validation_option(tmp_path):
    """If validation is misspelt, then it is refused naming the choices; structure loads."""
    base = CHANNEL.split("    tables:")[0] + "    destinations:\n" + \
        CHANNEL.split("    destinations:\n")[1].replace(
            "        steps:\n          - set: PID-5.1\n            value: ANONYMOUS\n", "")
    with pytest.raises(ConfigError, match="validation: expected one of none, structure"):
        load_channel_file(write_channel(tmp_path, "    validation: strict\n" + base), SPECS)
    channel = load_channel_file(write_channel(tmp_path, "    validation: structure\n" + base),
                                SPECS)
    assert channel.validation == "structure" and not channel_plan(channel).routes_only


def test_version_option(tmp_path):
    """If version names a version the validator does not know, or is given without
    validation: structure (where it would do nothing), then it is refused at its line."""
    base = CHANNEL.split("    tables:")[0] + "    destinations:\n" + \
        CHANNEL.split("    destinations:\n")[1].replace(
            "        steps:\n          - set: PID-5.1\n            value: ANONYMOUS\n", "")
    with pytest.raises(ConfigError, match=r"adt.yaml:1: .*version: expected one of 2.1, "):
        load_channel_file(write_channel(
            tmp_path, '    version: "3.0"\n    validation: structure\n' + base), SPECS)
    with pytest.raises(ConfigError, match=r"adt.yaml:1: .*version.* needs validation: structure"):
        load_channel_file(write_channel(tmp_path, '    version: "2.5"\n' + base), SPECS)
    channel = load_channel_file(write_channel(
        tmp_path, '    version: "2.5"\n    validation: structure\n' + base), SPECS)
    assert channel.version == "2.5" and channel_plan(channel).version == "2.5"
