"""
Tests for engine.cli.channeltest.scratch: ``aiguillage test-channel`` runs a channel's
``identity:`` step against an empty index in memory fed by the run's own messages, and shows
the answer a query gets instead of an ACK.
"""
from __future__ import annotations

from pathlib import Path

from hl7apy.parser import parse_message

from engine import status as st
from engine.app import load_config
from engine.cli.channeltest.command import run_test_channel
from engine.cli.channeltest.fixtures import check_fixture, load_fixture
from engine.cli.channeltest.runner import channels_by_name, find_channel, run_payload
from engine.cli.channeltest.scratch import NOTE, ScratchIdentity

CHU = "1.2.250.1.999.1.1"
GHT = "1.2.250.1.999.2.1"
ENGINE = f"""\
node: test
store:
  url: sqlite:///never-opened.db
identity:
  domains:
    - {{namespace: CHU-EXEMPLE, oid: {CHU}, type: PI}}
    - {{namespace: GHT-ARVERNE, oid: {GHT}, type: PI}}
  target: GHT-ARVERNE
channels:
  - channels/*.yaml
"""
MPI = """\
name: mpi
source: {type: mllp, port: 0}
response: {mode: after-processing}
identity: {feed: true, queries: true, query-limit: 5}
destinations:
  - {name: archive, type: file, directory: out}
"""
PLAIN = """\
name: plain
source: {type: mllp, port: 0}
destinations:
  - {name: archive, type: file, directory: out}
"""


def a01(number: str, control_id: str) -> str:
    return (f"MSH|^~\\&|GAM|CHU|MPI|GHT|20260320||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
            "EVN||20260320\r"
            f"PID|1||{number}^^^CHU-EXEMPLE&{CHU}&ISO^PI~77{number}^^^GHT-ARVERNE&{GHT}&ISO^PI"
            "||DURAND^PAUL^^^^^L||19700101|M\r"
            "PV1|1|I\r")


def pix(number: str, control_id: str) -> str:
    return (f"MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QBP^Q23^QBP_Q21|{control_id}|P|2.5\r"
            f"QPD|IHE PIX Query|{control_id}T|{number}^^^&{CHU}&ISO\rRCP|I\r")


def configured(tmp_path: Path):
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "mpi.yaml").write_text(MPI)
    (tmp_path / "channels" / "plain.yaml").write_text(PLAIN)
    (tmp_path / "engine.yaml").write_text(ENGINE)
    return load_config(str(tmp_path / "engine.yaml"))


def run(config, channel: str, *files: Path) -> list[str]:
    lines: list[str] = []
    code = run_test_channel(config, channel, tuple(str(f) for f in files),
                            echo=lambda got, err=False: lines.extend(x.text for x in got))
    assert code == 0
    return lines


def test_a_feed_then_a_query_in_one_run_is_answered_with_the_person(tmp_path):
    """If the identity step were left out, then the PIX query would be TRANSFORMED and
    archived; it is answered RSP^K23 with the person's number in the other domain."""
    config = configured(tmp_path)
    messages = tmp_path / "session.hl7"
    messages.write_text(a01("00472318", "A1") + "\n" + pix("00472318", "Q1"))
    lines = run(config, "mpi", messages)
    assert lines[0] == NOTE
    assert "  identity: ADT^A01: person 1 created" in lines
    answer = lines[lines.index("  answered, instead of an ACK:") + 1:]
    segments = [line.strip() for line in answer if line.startswith("    ")]
    rsp = parse_message("\r".join(segments), find_groups=False)
    assert rsp.msh.msh_9.to_er7() == "RSP^K23^RSP_K23"
    assert rsp.msa.msa_1.to_er7() == "AA" and rsp.qak.qak_2.to_er7() == "OK"
    assert rsp.pid.pid_3.to_er7() == f"7700472318^^^GHT-ARVERNE&{GHT}&ISO^PI"
    assert "  destination archive: not sent: the message is FILTERED" in lines


def test_each_run_starts_from_an_empty_index(tmp_path):
    """If the index were the store's or kept between runs, then the second run's query
    would find the first run's person; it is refused as an unknown key (AE)."""
    config = configured(tmp_path)
    feed, query = tmp_path / "feed.hl7", tmp_path / "query.hl7"
    feed.write_text(a01("00472318", "A1"))
    query.write_text(pix("00472318", "Q1"))
    run(config, "mpi", feed)
    lines = run(config, "mpi", query)
    assert any(line.startswith("    QAK|Q1T|AE|") for line in lines), lines


def test_a_channel_without_identity_opens_no_index_and_says_nothing_of_it(tmp_path):
    """If every run opened the scratch index, then a plain channel would pay for it and
    print the note; neither happens."""
    config = configured(tmp_path)
    scratch = ScratchIdentity(config.identity)
    plain = find_channel(config, "plain")
    assert scratch.hook_for(plain) is None and scratch._hooks is None
    message = tmp_path / "a01.hl7"
    message.write_text(a01("1", "A1"))
    lines = run(config, "plain", message)
    assert NOTE not in lines and lines[0] == f"{message}#1 -> plain: TRANSFORMED"


def test_a_fixture_of_a_query_sees_the_step(tmp_path):
    """If fixtures ran without the hook, then a query's fixture could only expect
    TRANSFORMED; a query about an unknown number expects the ERROR the engine stores."""
    config = configured(tmp_path)
    fixture_file = tmp_path / "query.yaml"
    segments = pix("1", "Q1").strip().split("\r")
    fixture_file.write_text("description: a PIX query of an unknown number is refused\n"
                            "input: |\n" + "".join(f"  {s}\n" for s in segments)
                            + "expect:\n  status: ERROR\n  reason: 'identity: PIX query Q1T: AE'\n")
    fixture = load_fixture(str(fixture_file), channels_by_name(config), default_channel="mpi")
    channel = find_channel(config, "mpi")
    outcome = check_fixture(fixture, channel, ScratchIdentity(config.identity).hook_for(channel))
    assert outcome.passed, outcome
    assert run_payload(channel, fixture.payload).status == st.TRANSFORMED  # without the step
