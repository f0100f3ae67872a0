"""Tests for engine.flow.decision.decide: a message and its channel's plan in, a Decision out.

Pure: no reactor, socket or store. Mappings are compiled from real ``steps:`` lists."""
from __future__ import annotations

from engine import status as st
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.routing import ORDER_BY_PATIENT, lane_for
from engine.store.records import Decision, NewDelivery
from mappings.steps import compile_filters, compile_steps
from mappings.tables import parse_csv_table

TEXT = "MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A08|7|P|2.5\rPID|1||P42^^^HOSP||DOE||19700101|M\r"
SEX = parse_csv_table("local,code,display\nM,male,Male\nF,female,Female\n", name="sex")


def steps(*items: dict):
    return compile_steps(list(items), file="channels/adt.yaml", tables={"sex": SEX})


def inbound(text: str = TEXT, **kwargs) -> InboundMessage:
    return InboundMessage(0, text, raw=text.encode(), charset="UNICODE UTF-8", **kwargs)


def test_routing_only_is_a_plan_without_steps():
    """If a channel has destinations and no step, then the message is TRANSFORMED with one
    delivery per destination, in the channel's order, each sending the raw bytes."""
    plan = ChannelPlan("adt-in", (DestinationPlan("archive"), DestinationPlan("dpi")))
    assert plan.routes_only
    assert decide(plan, inbound()) == Decision(
        st.TRANSFORMED, deliveries=(NewDelivery("archive", 0), NewDelivery("dpi", 0)))


def test_patient_ordering_uses_the_message_separators():
    """If a destination orders by patient, then the lane is the one of PID-3 read with the
    message's own separators."""
    plan = ChannelPlan("adt-in", (DestinationPlan("dpi", ORDER_BY_PATIENT, 16),))
    assert plan.needs_patient
    text = TEXT.replace("|", "#").replace("^", "$")
    decision = decide(plan, InboundMessage(1, text, "#", "$~\\&"))
    assert decision.deliveries == (NewDelivery("dpi", lane_for("P42", 16)),)
    assert lane_for("P42", 16) != 0  # so that a wrong key (lane 0) would be noticed


def test_a_plan_without_steps_shares_one_decision_per_combination_of_lanes():
    """If two messages of a plan without steps fall on the same lanes, then they get the
    same Decision object (made once); messages on other lanes get their own, with their
    lanes, equal to what routing each message afresh gives."""
    plan = ChannelPlan("adt-in", (DestinationPlan("dpi", ORDER_BY_PATIENT, 16),
                                  DestinationPlan("archive")))
    first = decide(plan, inbound())
    again = decide(plan, inbound(TEXT.replace("|7|", "|8|")))
    other = decide(plan, inbound(TEXT.replace("P42", "Q8")))
    assert again is first
    assert first.deliveries == (NewDelivery("dpi", lane_for("P42", 16)),
                                NewDelivery("archive", 0))
    assert other.deliveries == (NewDelivery("dpi", lane_for("Q8", 16)),
                                NewDelivery("archive", 0))
    assert lane_for("Q8", 16) != lane_for("P42", 16)
    assert len(plan.routed_decisions) == 2


def test_channel_without_patient_ordering_skips_the_key():
    """If no destination orders by patient, then the patient key is not read at all
    (a message without PID is fine)."""
    plan = ChannelPlan("adt-in", (DestinationPlan("archive", lanes=8),))
    assert not plan.needs_patient
    decision = decide(plan, InboundMessage(1, "MSH|^~\\&|X\r", encoding_characters=""))
    assert decision.deliveries == (NewDelivery("archive", 0),)


def test_broken_encoding_characters_are_an_error():
    """If the encoding characters are too short to name the separators, then the decision is
    ERROR naming the exception: the message is stored, not lost."""
    plan = ChannelPlan("adt-in", (DestinationPlan("dpi", ORDER_BY_PATIENT, 4),))
    decision = decide(plan, InboundMessage(1, TEXT, encoding_characters="^"))
    assert (decision.status, decision.deliveries) == (st.ERROR, ())
    assert decision.error.startswith("IndexError")


def test_filter_that_fails_is_filtered_with_its_reason():
    plan = ChannelPlan("adt", (DestinationPlan("out"),),
                       filters=compile_filters(['PID-8 == "F"']))
    decision = decide(plan, inbound())
    assert (decision.status, decision.error, decision.deliveries) == (st.FILTERED, None, ())
    assert "filters[0]" in decision.journal_detail


def test_steps_give_each_destination_its_payload():
    """If the channel's steps and a destination's own steps change the message, then that
    destination's delivery carries the mapped bytes and an unchanged one carries None (the
    raw bytes); nothing of it depends on the message id."""
    plan = ChannelPlan("adt", (DestinationPlan("dpi", steps=steps({"set": "MSH-5", "value": "DPI"})),
                               DestinationPlan("archive")),
                       steps=steps({"translate": "PID-8", "table": "sex"}))
    decision = decide(plan, inbound())
    dpi, archive = decision.deliveries
    assert decision.status == st.TRANSFORMED
    assert dpi.payload == TEXT.replace("|ENG|", "|DPI|").replace("|M\r", "|male\r").encode()
    assert archive.payload == TEXT.replace("|M\r", "|male\r").encode()
    unchanged = ChannelPlan("adt", (DestinationPlan("archive"),),
                            steps=steps({"set": "PID-8", "value": "M"}))
    assert decide(unchanged, inbound()).deliveries == (NewDelivery("archive", 0, None),)
    assert decide(plan, inbound()) == decide(plan, InboundMessage(
        99, TEXT, raw=TEXT.encode(), charset="UNICODE UTF-8"))


def test_step_failure_is_an_error_naming_step_path_and_value():
    plan = ChannelPlan("adt", (DestinationPlan("out"),),
                       steps=steps({"translate": "PID-8", "table": "sex",
                                    "on-unknown": "error"}))
    decision = decide(plan, inbound(TEXT.replace("|M\r", "|X\r")))
    assert (decision.status, decision.deliveries) == (st.ERROR, ())
    assert "channels/adt.yaml" in decision.error and "steps[0].translate" in decision.error
    assert "PID-8" in decision.error and "'X'" in decision.error
    assert decision.journal_detail == decision.error


def boom(message) -> None:
    """A ``python:`` step with a bug."""
    raise KeyError("ZBE")


def test_a_bug_in_a_python_step_is_an_error_naming_it():
    plan = ChannelPlan("adt", (DestinationPlan("out"),),
                       steps=steps({"python": "tests.flow.test_decision:boom"}))
    decision = decide(plan, inbound())
    assert decision.status == st.ERROR and "ZBE" in decision.error
