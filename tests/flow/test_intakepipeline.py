"""
Tests for engine.flow.intakepipeline: which channels run their pipeline at intake, and that the
outcome is the one the processor would have reached, answered as the ACK mode says.

The intake is driven with the fakes of tests/test_intake.py; the processor path with
tests/fakes.FakeStore and task.Clock. Mappings are compiled from real ``steps:`` lists.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet import task

from engine.flow import intakepipeline
from engine import status as st
from engine.flow.intakepipeline import IntakePipeline, runs_at_intake
from engine.flow.pipeline import VALIDATION_STRUCTURE, ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.processor import Processor
from engine.flow.response import ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING, ResponsePolicy
from engine.store.records import IngestResult, ProcessingResult
from mappings.steps import compile_filters, compile_steps
from mappings.tables import parse_csv_table
from tests import fakes
from tests.flow.test_intake import PEER, err_code, field_of, make, message, parse, result_of

SEX = parse_csv_table("local,code,display\nM,male,Male\nF,female,Female\n", name="sex")
PYTHON_STEP = {"python": "tests.flow.test_intakepipeline:unchanged"}


def unchanged(message) -> None:
    """A ``python:`` step that leaves the message alone (its cost is unknown to the engine)."""


def steps(*items: dict, field: str = "steps"):
    return compile_steps(list(items), file="channels/adt.yaml", tables={"sex": SEX},
                         field=field)


def channel(*, steps_=None, filters=None, destination_steps=None, validation="none",
            ack_mode=ACK_AFTER_COMMIT, name="adt") -> ChannelPlan:
    return ChannelPlan(name, (DestinationPlan("out", steps=destination_steps),),
                       response=ResponsePolicy(ack_mode), steps=steps_, filters=filters,
                       validation=validation)


TRANSLATE = {"translate": "PID-8", "table": "sex", "on-unknown": "error"}


def adt(control_id: str, sex: str) -> bytes:
    return message(control_id, body=f"PID|1||IPP{control_id}^^^CHU||DUPONT^JEAN||19700101|{sex}\r")


# -- which channels ----------------------------------------------------------------------

def test_built_in_steps_filters_and_destination_steps_run_at_intake() -> None:
    assert runs_at_intake(channel(steps_=steps(TRANSLATE)))
    assert runs_at_intake(channel(filters=compile_filters(['PID-8 == "M"'])))
    assert runs_at_intake(channel(destination_steps=steps({"delete": "PV1[1]"})))


def test_routing_only_channels_are_routed_not_processed_at_intake() -> None:
    """If a channel only routes, then its deliveries are decided by pipeline.route as before."""
    assert not runs_at_intake(channel())


@pytest.mark.parametrize("plan", [
    pytest.param(lambda: channel(steps_=steps(TRANSLATE, PYTHON_STEP)), id="channel"),
    pytest.param(lambda: channel(steps_=steps({"for-each": "PID-3[*]", "steps": [PYTHON_STEP]})),
                 id="nested"),
    pytest.param(lambda: channel(steps_=steps(TRANSLATE),
                                 destination_steps=steps(PYTHON_STEP)), id="destination"),
])
def test_a_python_step_anywhere_keeps_the_processor_path(plan) -> None:
    """If any step, however nested, is a python: step, then the processor runs the pipeline
    after the commit: its cost is unknown and the reactor thread must not wait on it."""
    assert not runs_at_intake(plan())


def test_structural_validation_keeps_the_processor_path() -> None:
    assert not runs_at_intake(channel(steps_=steps(TRANSLATE), validation=VALIDATION_STRUCTURE))


def test_decided_once_per_plan_and_again_for_a_reloaded_plan(monkeypatch) -> None:
    """If the same plan is asked about twice, then it is decided once; if a reload swaps the
    channel's plan for a new object, then the new plan is decided afresh."""
    calls = []
    real = intakepipeline.runs_at_intake
    monkeypatch.setattr(intakepipeline, "runs_at_intake",
                        lambda plan: calls.append(plan) or real(plan))
    pipeline = IntakePipeline()
    mapped = channel(steps_=steps(TRANSLATE))
    assert pipeline.applies(mapped) and pipeline.applies(mapped)
    assert len(calls) == 1
    reloaded = channel(steps_=steps(TRANSLATE, PYTHON_STEP))
    assert not pipeline.applies(reloaded)
    assert len(calls) == 2


# -- at intake: what is committed and answered -------------------------------------------

def test_mapped_message_commits_with_its_outcome_and_deliveries_in_one_record() -> None:
    """If a channel's steps are built-in, then the record handed to the store carries the
    pipeline's outcome (the mapped payload included), the raw bytes stay as received, the
    processor is not involved, the lanes get the committed deliveries and the ACK is AA."""
    plan = channel(steps_=steps(TRANSLATE))
    setup = make(plan)
    raw = adt("M1", "F")

    ack = result_of(setup.intake.receive("adt", raw, PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert (record.status, record.raw, record.routed) == (st.RECEIVED, raw, None)
    assert record.processed.status == st.TRANSFORMED
    [delivery] = record.processed.deliveries
    assert delivery.payload == raw.replace(b"|19700101|F\r", b"|19700101|female\r")
    assert setup.processor.queued == []
    [(outcome, delivery_ids, inbound)] = setup.delivered
    assert outcome == replace(record.processed, message_id=100)
    assert delivery_ids == [500]
    assert (inbound.message_id, inbound.raw, inbound.control_id) == (100, raw, "M1")
    assert setup.intake.pipeline.processed == 1


def test_step_failure_is_committed_in_error_and_answered_aa_after_commit() -> None:
    """If a step fails in after-commit mode, then the record carries ERROR with the step,
    path and value, the sender gets AA (the message is safely stored) and nothing is
    delivered."""
    setup = make(channel(steps_=steps(TRANSLATE)))

    ack = result_of(setup.intake.receive("adt", adt("E1", "X"), PEER))

    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert record.processed.status == st.ERROR
    assert "channels/adt.yaml" in record.processed.error
    assert "steps[0].translate" in record.processed.error
    assert "PID-8" in record.processed.error and "'X'" in record.processed.error
    assert setup.delivered == [] and setup.processor.queued == []


def test_step_failure_after_processing_is_answered_ae_207_at_once() -> None:
    """If a step fails in after-processing mode, then the ACK, sent after the one commit,
    is AE with ERR 207 and the failure's text."""
    setup = make(channel(steps_=steps(TRANSLATE), ack_mode=ACK_AFTER_PROCESSING))

    parsed = parse(result_of(setup.intake.receive("adt", adt("E2", "X"), PEER)))

    assert field_of(parsed, "MSA", 1) == "AE"
    assert err_code(parsed) == 207
    assert "PID-8" in field_of(parsed, "MSA", 3)
    assert setup.processor.queued == []


def test_filtered_after_processing_is_aa_filtered() -> None:
    setup = make(channel(filters=compile_filters(['PID-8 == "M"']),
                         ack_mode=ACK_AFTER_PROCESSING))
    parsed = parse(result_of(setup.intake.receive("adt", adt("F1", "F"), PEER)))
    assert (field_of(parsed, "MSA", 1), field_of(parsed, "MSA", 3)) == ("AA", "filtered")
    assert setup.store.records[0].processed.status == st.FILTERED
    assert setup.delivered == []


def test_python_step_channel_is_committed_received_and_queued_for_the_processor() -> None:
    setup = make(channel(steps_=steps(TRANSLATE, PYTHON_STEP)))
    ack = result_of(setup.intake.receive("adt", adt("P1", "F"), PEER))
    assert field_of(parse(ack), "MSA", 1) == "AA"
    [record] = setup.store.records
    assert (record.processed, record.routed) == (None, None)
    [(inbound, name, _)] = setup.processor.queued
    assert (inbound.message_id, name) == (100, "adt")


def test_duplicate_is_answered_as_a_duplicate_and_not_delivered() -> None:
    """If the message processed at intake turns out to be a duplicate, then the outcome is
    dropped: AA naming the original, no delivery."""
    setup = make(channel(steps_=steps(TRANSLATE), ack_mode=ACK_AFTER_PROCESSING),
                 answer=lambda record, message_id: IngestResult(message_id, st.DUPLICATE,
                                                                duplicate_of=7))
    parsed = parse(result_of(setup.intake.receive("adt", adt("D1", "F"), PEER)))
    assert "duplicate of message 7" in field_of(parsed, "MSA", 3)
    assert setup.delivered == [] and setup.processor.queued == []


def test_a_bug_in_the_pipeline_is_stored_as_an_error(monkeypatch) -> None:
    """If the pipeline raises something unexpected, then the message is still committed, in
    ERROR naming the exception, as the processor would have stored it."""
    def broken(plan, message):
        raise RuntimeError("boom")

    monkeypatch.setattr(intakepipeline.pipeline, "process", broken)
    setup = make(channel(steps_=steps(TRANSLATE)))
    ack = result_of(setup.intake.receive("adt", adt("B1", "F"), PEER))
    assert field_of(parse(ack), "MSA", 1) == "AA"
    processed = setup.store.records[0].processed
    assert (processed.status, processed.error) == (st.ERROR, "RuntimeError: boom")


# -- the same outcome both ways ----------------------------------------------------------

SAMPLES = [adt("S1", "F"), adt("S2", "X"), adt("S3", "M"),
           message("S4", body="PID|1||IPPS4^^^CHU||TEST^PATIENT||19700101|M\r")]


def outcomes_through_the_processor(plan: ChannelPlan) -> list[ProcessingResult]:
    """What the processor records for each sample, committed RECEIVED first."""
    store, clock = fakes.FakeStore(), task.Clock()
    processor = Processor(store, clock, {plan.name: plan}, lambda *args: None)
    for raw in SAMPLES:
        message_id = store.add_message(plan.name, raw)
        processor.enqueue(InboundMessage(message_id, raw.decode(), raw=raw,
                                         charset="UNICODE UTF-8"), plan.name)
    clock.advance(0)
    return store.processing


@pytest.mark.parametrize("ack_mode", [ACK_AFTER_COMMIT, ACK_AFTER_PROCESSING])
def test_outcomes_are_those_the_processor_records(ack_mode) -> None:
    """If the same messages go through a channel at intake and through the processor, then
    the outcomes (status, error naming step/path/value, detail, deliveries and their mapped
    payloads) are the same, message ids aside."""
    plan = channel(steps_=steps(TRANSLATE, {"stop": "test patient",
                                            "when": 'PID-5.1 == "TEST"'}),
                   destination_steps=steps({"set": "MSH-5", "value": "DPI"}),
                   ack_mode=ack_mode)
    setup = make(plan)
    for raw in SAMPLES:
        result_of(setup.intake.receive("adt", raw, PEER))
    at_intake = [record.processed for record in setup.store.records]

    processed = outcomes_through_the_processor(plan)

    assert [r.status for r in at_intake] == [st.TRANSFORMED, st.ERROR, st.TRANSFORMED,
                                            st.FILTERED]
    assert at_intake == [replace(r, message_id=intakepipeline.PENDING_ID) for r in processed]
