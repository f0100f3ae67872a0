"""
What the intake's tests share: a small fake store (``ingest`` only, checked against the real
:meth:`Store.ingest` in tests/flow/test_intake.py) answering with a scripted
:class:`IngestResult` or failing, a fake decider (a slow plan's messages) handing back
Deferreds the test fires, and readers of the ACKs that use python-hl7 (``hl7.parse``), an
independent parser, rather than this project's own ``parse_ack``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import hl7
from twisted.internet import defer

from engine import status as st
from engine.interfaces import PeerInfo
from engine.flow.intake import Intake
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage
from engine.flow.response import ACK_AFTER_COMMIT, ResponsePolicy
from engine.store.records import InboundRecord, IngestResult, NewDelivery

PEER = PeerInfo("mllp", "10.1.2.3:40000")


def message(control_id: str = "MSG00001", *, msh15: str = "", charset: str = "",
            body: str = "PID|1||IPP123^^^CHU~INS9^^^INS||DUPONT^JEAN\r",
            version: str = "2.5") -> bytes:
    msh = (f"MSH|^~\\&|HIS|CHU-A|AIG|GHT|20240101120000||ADT^A01^ADT_A01|{control_id}|P|"
           f"{version}|||{msh15}|||{charset}")
    return (msh.rstrip("|") + "\r" + "EVN||20240101120000\r" + body).encode("utf-8")


# -- fakes -----------------------------------------------------------------------------

@dataclass
class FakeStore:
    """``ingest`` only: records what it is given, answers as scripted (default: RECEIVED)."""

    answer: Callable[[InboundRecord, int], Any] | None = None
    records: list[InboundRecord] = field(default_factory=list)
    next_id: int = 100

    def ingest(self, record: InboundRecord,
               then: Callable[[bool, Any], None] | None = None) -> defer.Deferred | None:
        return answered_by(self.committed(record), then)

    def committed(self, record: InboundRecord) -> defer.Deferred:
        self.records.append(record)
        message_id = self.next_id
        self.next_id += 1
        if self.answer is None:
            status, decision = record.status, record.decision
            if decision is not None and status == st.RECEIVED:  # decided before the commit
                return defer.succeed(IngestResult(
                    message_id, decision.status,
                    delivery_ids=tuple(range(500, 500 + len(decision.deliveries)))))
            return defer.succeed(IngestResult(message_id, status))
        try:
            return defer.succeed(self.answer(record, message_id))
        except Exception as error:
            return defer.fail(error)


def answered_by(committed: defer.Deferred, then: Any) -> defer.Deferred | None:
    """What Store.ingest answers for a commit's Deferred: the Deferred itself, or, given
    ``then``, None, ``then(True, result)`` or ``then(False, exception)`` called once it fires."""
    if then is None:
        return committed
    committed.addCallbacks(lambda result: then(True, result),
                           lambda failure: then(False, failure.value))
    return None


@dataclass
class FakeDecider:
    """``submit`` hands back a Deferred per message, which the test fires with a Decision;
    ``holding`` names the channels said to have decisions queued."""

    queued: list[tuple[InboundMessage, str, defer.Deferred]] = field(default_factory=list)
    holding: set[str] = field(default_factory=set)

    def submit(self, channel: str, message: InboundMessage) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.queued.append((message, channel, d))
        return d

    def holds(self, channel: str) -> bool:
        return channel in self.holding


@dataclass
class FakeQueued:
    """``add`` records the deliveries committed, per channel."""

    added: list[tuple[str, tuple[NewDelivery, ...]]] = field(default_factory=list)

    def add(self, channel: str, deliveries: Any) -> None:
        self.added.append((channel, tuple(deliveries)))


def plan(name: str = "adt", *, ack_mode: str = ACK_AFTER_COMMIT, order_by: str = "destination",
         lanes: int = 1, slow: bool = False, **response: Any) -> ChannelPlan:
    """A channel with one destination; ``response`` holds ResponsePolicy fields; ``slow``:
    decided by the decider after the commit."""
    return ChannelPlan(name, (DestinationPlan("out", order_by, lanes),),
                       response=ResponsePolicy(ack_mode, **response), marked_slow=slow)


@dataclass
class Setup:
    intake: Intake
    store: FakeStore
    decider: FakeDecider
    queued: FakeQueued

    @property
    def delivered(self) -> list[tuple[str, tuple[NewDelivery, ...]]]:
        return self.queued.added


def make(channel: ChannelPlan | None = None, answer: Callable | None = None) -> Setup:
    channel = channel or plan()
    store, decider, queued = FakeStore(answer=answer), FakeDecider(), FakeQueued()
    intake = Intake(store, {channel.name: channel}, decider, queued)
    return Setup(intake, store, decider, queued)


def result_of(d: defer.Deferred) -> Any:
    """The result a Deferred has already fired with (fails the test if it has not)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    outcome = results[0]
    if hasattr(outcome, "raiseException"):
        outcome.raiseException()
    return outcome


def parse(ack: bytes) -> Any:
    assert isinstance(ack, bytes) and ack.endswith(b"\r")
    return hl7.parse(ack.decode("utf-8"))


def field_of(parsed: Any, segment: str, number: int) -> str:
    try:
        return str(parsed.segment(segment)[number])
    except (IndexError, KeyError):
        return ""


def err_code(parsed: Any) -> int:
    return int(str(parsed.segment("ERR")[3][0][0]))


def failing_store(record: InboundRecord, message_id: int) -> IngestResult:
    raise RuntimeError("database is locked")


class HeldStore(FakeStore):
    """Commits only when the test says so, as a group commit under way would."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[defer.Deferred] = []

    def ingest(self, record: InboundRecord,
               then: Callable[[bool, Any], None] | None = None) -> defer.Deferred | None:
        committed = self.committed(record)
        held: defer.Deferred = defer.Deferred()
        self.pending.append(held)
        held.addCallback(lambda _: committed)
        return answered_by(held, then)
