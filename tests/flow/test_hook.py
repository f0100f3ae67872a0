"""
The flow's side of a hook step (engine.flow.hook): what decide makes of each outcome.

Pure: the hook is a plain object standing for the identity: step.
"""
from __future__ import annotations

from engine import status as st
from engine.flow.decision import decide
from engine.flow.hook import HookOutcome
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from mappings.steps import compile_steps

TEXT = "MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A08|7|P|2.5\rPID|1||P42^^^HOSP||DOE\r"


class Hook:
    """Records what it was given; answers ``outcome``, rewriting PID-3 when asked."""

    def __init__(self, outcome: HookOutcome, rewrite: str | None = None):
        self.outcome = outcome
        self.rewrite = rewrite
        self.seen = []

    def run(self, message, inbound):
        self.seen.append((message.segment("PID").field(5), inbound.message_id, inbound.peer))
        if self.rewrite:
            message.segment("PID").set_field(3, self.rewrite)
        return self.outcome


def plan(hook, **kwargs) -> ChannelPlan:
    return ChannelPlan("adt-in", (DestinationPlan("dpi"),), identity=hook, **kwargs)


def inbound() -> InboundMessage:
    return InboundMessage(5, TEXT, raw=TEXT.encode(), peer="mllp://127.0.0.1:9")


def test_a_plan_with_a_hook_is_slow_and_not_routing_only():
    hooked = plan(Hook(HookOutcome()))
    assert hooked.slow and not hooked.routes_only


def test_the_hook_runs_after_the_channel_steps_and_its_changes_are_delivered():
    """If a step sets PID-5 and the hook rewrites PID-3, then the hook saw the step's work
    and the destination gets the hook's PID-3, with the hook's line in the journal."""
    hook = Hook(HookOutcome(detail="identity: person 3 created"), rewrite="G1^^^GHT")
    steps = compile_steps([{"set": "PID-5", "value": "ROE"}], file="c.yaml")
    decision = decide(plan(hook, steps=steps), inbound())
    assert hook.seen == [("ROE", 5, "mllp://127.0.0.1:9")]
    assert decision.status == st.TRANSFORMED and decision.detail == "identity: person 3 created"
    (delivery,) = decision.deliveries
    assert delivery.destination == "dpi" and b"PID|1||G1^^^GHT||ROE" in delivery.payload


def test_a_refusal_is_an_error_with_its_code_and_location():
    hook = Hook(HookOutcome(error="identity: no person holds 99", code=204, location="MRG^1^1"))
    decision = decide(plan(hook), inbound())
    assert (decision.status, decision.error, decision.error_code, decision.error_location) == \
        (st.ERROR, "identity: no person holds 99", 204, "MRG^1^1")
    assert decision.deliveries == ()


def test_an_answered_query_goes_nowhere_and_keeps_its_answer():
    hook = Hook(HookOutcome(detail="PIX query T1: OK", answer=b"MSH|RSP"))
    decision = decide(plan(hook), inbound())
    assert (decision.status, decision.detail, decision.response) == \
        (st.FILTERED, "PIX query T1: OK", b"MSH|RSP")


def test_a_refused_query_is_an_error_that_still_answers():
    hook = Hook(HookOutcome(error="unknown domain", code=204, location="QPD^1^3", answer=b"RSP"))
    decision = decide(plan(hook), inbound())
    assert (decision.status, decision.response) == (st.ERROR, b"RSP")


def test_a_hook_that_raises_is_an_error_naming_it():
    class Broken:
        def run(self, message, inbound):
            raise RuntimeError("database gone")

    decision = decide(plan(Broken()), inbound())
    assert decision.status == st.ERROR and "RuntimeError: database gone" in decision.error


def test_warnings_go_with_the_decision_and_into_the_ack():
    """If the hook warns, then the decision carries it and the application ACK holds an ERR
    of severity W beside AA."""
    from engine.flow.appack import with_application_ack
    from mllp.header import read_header

    hook = Hook(HookOutcome(detail="kept for review", warnings=((0, "review: twins?", "PID^1^3"),)))
    decision = decide(plan(hook), inbound())
    assert decision.status == st.TRANSFORMED and decision.warnings == ((0, "review: twins?",
                                                                         "PID^1^3"),)
    enhanced = TEXT.replace("|P|2.5\r", "|P|2.5|||NE|AL\r")
    acked = with_application_ack(plan(hook), read_header(enhanced.encode()), decision)
    payload = acked.deliveries[-1].payload
    assert b"MSA|AA|7" in payload and b"|W|" in payload and b"review: twins?" in payload
