"""
The engine's identity: step (engine/identity/hook.py) on the real index, without sockets:
``decide`` runs a channel plan whose hook calls the store's synchronous index, on SQLite and
PostgreSQL (the ``engine`` fixture of this folder).
"""
from __future__ import annotations

from engine import status as st
from engine.config.identity import IdentityConfig, IdentityStepConfig
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.identity.hook import IdentityHooks
from engine.flow.response import ResponsePolicy
from identity.store.audit import list_audit
from identity.store.history import history
from tests.identity.hl7.conformance import CHU, GHT
from tests.identity.hl7.messages import adt, ght, ipp, pid_segment

CONFIG = IdentityConfig((CHU, GHT), GHT)


class Channel:
    """What IdentityHooks reads of a channel's configuration."""

    def __init__(self, **settings):
        self.identity = IdentityStepConfig(**settings)
        self.response = ResponsePolicy()


def plan(engine, **settings) -> ChannelPlan:
    hook = IdentityHooks(CONFIG, engine).for_channel(Channel(**settings))
    return ChannelPlan("mpi", (DestinationPlan("out"),), identity=hook)


def message(text: str, message_id: int) -> InboundMessage:
    return InboundMessage(message_id, text, raw=text.encode(), charset="UNICODE UTF-8",
                          peer="mllp://127.0.0.1:4000")


def test_a_feed_message_changes_the_index_with_the_message_as_cause(engine):
    """If an A01 is decided as message 41, then its person exists, its history names
    message:41, the journal names the person, and an ITI-8 audit record is kept."""
    decision = decide(plan(engine, feed=True),
                      message(adt("A01", pid_segment(ipp("1"))).to_text(), 41))
    assert decision.status == st.TRANSFORMED and len(decision.deliveries) == 1
    assert decision.detail.startswith("identity: ADT^A01: person ") and "created" in decision.detail
    person_id = int(decision.detail.split("person ")[1].split()[0])
    with engine.connect() as conn:
        causes = {event["cause"] for event in history(conn, person_id)}
        trail = list_audit(conn)
    assert causes == {"message:41"}
    assert [(a["transaction"], a["outcome"], a["peer"]) for a in trail] == \
        [("ITI-8", "AA", "mllp://127.0.0.1:4000")]


def test_a_refused_merge_leaves_the_index_as_it_was(engine):
    """If A40 names an unknown MRG-1, then ERROR 204 at MRG^1^1, no person made by it."""
    channel = plan(engine, feed=True)
    decide(channel, message(adt("A01", pid_segment(ipp("1"))).to_text(), 1))
    decision = decide(channel, message(adt("A40", pid_segment(ipp("1")),
                                           "MRG|" + ipp("99")).to_text(), 2))
    assert (decision.status, decision.error_code, decision.error_location) == \
        (st.ERROR, 204, "MRG^1^1")
    assert decision.error.startswith("identity: no person holds 99")


def test_resolve_and_rewrite_into_the_target(engine):
    """If a person holds a GHT number, then a message naming its CHU number leaves with the
    GHT number in PID-3 (``rewrite-pid3: local``)."""
    decide(plan(engine, feed=True),
           message(adt("A01", pid_segment(ipp("1") + "~" + ght("G1"))).to_text(), 1))
    decision = decide(plan(engine, targets=("local",)),
                      message(adt("A08", pid_segment(ipp("1"))).to_text(), 2))
    (delivery,) = decision.deliveries
    assert b"PID|1||G1^^^GHT-ARVERNE&1.2.250.1.999.2.1&ISO^PI|" in delivery.payload


def test_a_pix_query_is_answered_and_audited(engine):
    decide(plan(engine, feed=True),
           message(adt("A01", pid_segment(ipp("1") + "~" + ght("G1"))).to_text(), 1))
    query = ("MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QBP^Q23^QBP_Q21|Q1|P|2.5\r"
             "QPD|IHE PIX Query|T1|1^^^&1.2.250.1.999.1.1&ISO\rRCP|I\r")
    decision = decide(plan(engine, queries=True), message(query, 2))
    assert decision.status == st.FILTERED and decision.deliveries == ()
    assert b"\rQAK|T1|OK|" in decision.response and b"G1^^^GHT-ARVERNE" in decision.response
    assert decision.response.startswith(b"MSH|^~\\&|MPI|GHT|DPI|CAB|")  # the query's names
    with engine.connect() as conn:
        trail = list_audit(conn, transaction="ITI-9")
    assert [(a["control_id"], a["outcome"]) for a in trail] == [("Q1", "OK")]


def test_a_query_is_answered_in_the_channel_s_names(engine):
    """If the channel's response: names the answering application, then the RSP says it."""

    channel = Channel(queries=True)
    channel.response = ResponsePolicy("after-processing", sending_application="AIGUILLAGE",
                                      sending_facility="GHT^1.2.250.1.999.2^ISO")
    hook = IdentityHooks(CONFIG, engine).for_channel(channel)
    query = ("MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QBP^Q23^QBP_Q21|Q1|P|2.5\r"
             "QPD|IHE PIX Query|T1|1^^^&1.2.250.1.999.1.1&ISO\rRCP|I\r")
    decision = decide(ChannelPlan("mpi", (DestinationPlan("out"),), identity=hook),
                      message(query, 1))
    assert decision.response.startswith(
        b"MSH|^~\\&|AIGUILLAGE|GHT^1.2.250.1.999.2^ISO|DPI|CAB|")
    assert b"MSA|AE|Q1" in decision.response  # nobody holds CHU 1 in an empty index
