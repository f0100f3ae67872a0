"""
Tests for the intake deciding a fast plan's messages before their one commit: what is
committed and answered, and that the decision is the one the decider reaches for a slow plan.

The intake is driven with the fakes of tests/flow/test_intake.py; the decider with
tests/fakes.FakeStore and a run_in_thread that runs at once. Mappings are compiled from real
``steps:`` lists.
"""
from __future__ import annotations

from twisted.internet import defer, task

from engine import status as st
from engine.flow.decider import Decider
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.flow.response import ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING, ResponsePolicy
from engine.store.records import Decision, IngestResult
from mappings.steps import compile_filters, compile_steps
from mappings.tables import parse_csv_table
from tests import fakes
from tests.flow.intake_support import PEER, err_code, field_of, make, message, parse, result_of

import pytest

SEX = parse_csv_table("local,code,display\nM,male,Male\nF,female,Female\n", name="sex")
PYTHON_STEP = {"python": "tests.flow.test_intake_decisions:unchanged"}


def unchanged(message) -> None:
    """A ``python:`` step that leaves the message alone (its cost is unknown to the engine)."""


def steps(*items: dict, field: str = "steps"):
    return compile_steps(list(items), file="channels/adt.yaml", tables={"sex": SEX},
                         field=field)


def channel(*, steps_=None, filters=None, destination_steps=None, validation="none",
            ack_mode=ACK_AFTER_COMMIT, name="adt", slow=False) -> ChannelPlan:
    return ChannelPlan(name, (DestinationPlan("out", steps=destination_steps),),
                       response=ResponsePolicy(ack_mode), steps=steps_, filters=filters,
                       validation=validation, marked_slow=slow)


TRANSLATE = {"translate": "PID-8", "table": "sex", "on-unknown": "error"}


def adt(control_id: str, sex: str) -> bytes:
    return message(control_id, body=f"PID|1||IPP{control_id}^^^CHU||DUPONT^JEAN||19700101|{sex}\r")


# -- at intake: what is committed and answered -------------------------------------------

def test_mapped_message_commits_with_its_decision_and_deliveries_in_one_record() -> None:
    """If a channel's steps are built-in, then the record handed to the store carries the
    decision (the mapped payload included), the raw bytes stay as received, the decider is
    not involved, the lanes are told of the committed deliveries and the ACK is AA."""
    plan = channel(steps_=steps(TRANSLATE))
    setup = make(plan)
    raw = adt("M1", "F")

    ack = result_of(setup.intake.receive("adt", raw, PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert (record.status, record.raw) == (st.RECEIVED, raw)
    assert record.decision.status == st.TRANSFORMED
    [delivery] = record.decision.deliveries
    assert delivery.payload == raw.replace(b"|19700101|F\r", b"|19700101|female\r")
    assert setup.decider.queued == []
    assert setup.delivered == [("adt", record.decision.deliveries)]
    assert setup.intake.decided == 1


def test_step_failure_is_committed_in_error_and_answered_aa_after_commit() -> None:
    """If a step fails in after-commit mode, then the record carries ERROR with the step,
    path and value, the sender gets AA (the message is safely stored) and nothing is
    delivered."""
    setup = make(channel(steps_=steps(TRANSLATE)))

    ack = result_of(setup.intake.receive("adt", adt("E1", "X"), PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert record.decision.status == st.ERROR
    assert "channels/adt.yaml" in record.decision.error
    assert "steps[0].translate" in record.decision.error
    assert "PID-8" in record.decision.error and "'X'" in record.decision.error
    assert setup.delivered == [] and setup.decider.queued == []


def test_step_failure_after_processing_is_answered_ae_207_at_once() -> None:
    """If a step fails in after-processing mode, then the ACK, sent after the one commit,
    is AE with ERR 207 and the failure's text."""
    setup = make(channel(steps_=steps(TRANSLATE), ack_mode=ACK_AFTER_PROCESSING))

    parsed = parse(result_of(setup.intake.receive("adt", adt("E2", "X"), PEER)))

    assert field_of(parsed, "MSA", 1) == "AE"
    assert err_code(parsed) == 207
    assert "PID-8" in field_of(parsed, "MSA", 3)
    assert setup.decider.queued == []


def test_filtered_after_processing_is_aa_filtered() -> None:
    setup = make(channel(filters=compile_filters(['PID-8 == "M"']),
                         ack_mode=ACK_AFTER_PROCESSING))
    parsed = parse(result_of(setup.intake.receive("adt", adt("F1", "F"), PEER)))
    assert (field_of(parsed, "MSA", 1), field_of(parsed, "MSA", 3)) == ("AA", "filtered")
    assert setup.store.records[0].decision.status == st.FILTERED
    assert setup.delivered == []


def test_python_step_channel_is_committed_received_and_handed_to_the_decider() -> None:
    setup = make(channel(steps_=steps(TRANSLATE, PYTHON_STEP)))
    ack = result_of(setup.intake.receive("adt", adt("P1", "F"), PEER))
    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert record.decision is None
    [(inbound, name, _)] = setup.decider.queued
    assert (inbound.message_id, name) == (100, "adt")


def test_duplicate_is_answered_as_a_duplicate_and_not_delivered() -> None:
    """If the message processed at intake turns out to be a duplicate, then the outcome is
    dropped: AA naming the original, no delivery."""
    setup = make(channel(steps_=steps(TRANSLATE), ack_mode=ACK_AFTER_PROCESSING),
                 answer=lambda record, message_id: IngestResult(message_id, st.DUPLICATE,
                                                                duplicate_of=7))
    parsed = parse(result_of(setup.intake.receive("adt", adt("D1", "F"), PEER)))
    assert "duplicate of message 7" in field_of(parsed, "MSA", 3)
    assert setup.delivered == [] and setup.decider.queued == []


class Broken:
    """A compiled program with a bug: it raises what no step should."""

    steps = ()

    def run(self, message, trace=None):
        raise RuntimeError("boom")


def test_a_bug_in_a_step_is_stored_as_an_error() -> None:
    """If a step raises something unexpected, then the message is still committed, in ERROR
    naming the exception, and acknowledged."""
    setup = make(channel(steps_=Broken()))
    ack = result_of(setup.intake.receive("adt", adt("B1", "F"), PEER))
    assert field_of(parse(ack), "MSA", 1) == "AA"
    decision = setup.store.records[0].decision
    assert (decision.status, decision.error) == (st.ERROR, "RuntimeError: boom")


# -- the same outcome both ways ----------------------------------------------------------

SAMPLES = [adt("S1", "F"), adt("S2", "X"), adt("S3", "M"),
           message("S4", body="PID|1||IPPS4^^^CHU||TEST^PATIENT||19700101|M\r")]


def decisions_of_the_decider(plan: ChannelPlan) -> list[Decision]:
    """What the decider commits for each sample, committed RECEIVED first."""
    store, clock = fakes.FakeStore(), task.Clock()
    decider = Decider(store, clock, {plan.name: plan}, QueuedWork(clock, lambda keys: None),
                      run_in_thread=defer.maybeDeferred)
    decider.start()
    for raw in SAMPLES:
        message_id = store.add_message(plan.name, raw)
        decider.submit(plan.name, InboundMessage(message_id, raw.decode(), raw=raw,
                                                 charset="UNICODE UTF-8"))
    return [decided.decision for decided in store.decided]


@pytest.mark.parametrize("ack_mode", [ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING])
def test_decisions_are_those_the_decider_commits(ack_mode) -> None:
    """If the same messages go through a channel decided at intake and through the decider,
    then the decisions (status, error naming step/path/value, detail, deliveries and their
    mapped payloads) are the same."""
    plan = channel(steps_=steps(TRANSLATE, {"stop": "test patient",
                                            "when": 'PID-5.1 == "TEST"'}),
                   destination_steps=steps({"set": "MSH-5", "value": "DPI"}),
                   ack_mode=ack_mode)
    setup = make(plan)
    for raw in SAMPLES:
        result_of(setup.intake.receive("adt", raw, PEER))
    at_intake = [record.decision for record in setup.store.records]

    decided = decisions_of_the_decider(plan)

    assert [r.status for r in at_intake] == [st.TRANSFORMED, st.ERROR, st.TRANSFORMED,
                                            st.FILTERED]
    assert at_intake == decided
