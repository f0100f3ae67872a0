"""
A channel as the flow sees it: its destinations, its steps, how it answers, and whether
deciding a message of it can be slow.

Built once per channel (and again by a reload) from its configuration by the composition
root (:func:`engine.app.channel_plan`); read by the intake, :func:`engine.flow.decision.decide`
and the decider that runs slow plans off the reactor thread (:mod:`engine.flow.decider`).

test-case-name: tests.flow.test_plan
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

from engine.flow.response import ResponsePolicy
from engine.flow.routing import ORDER_BY_PATIENT
from mappings.stepkinds import PythonStep

VALIDATION_NONE = "none"
VALIDATION_STRUCTURE = "structure"


@dataclass(frozen=True)
class DestinationPlan:
    """What deciding needs to know of one destination."""

    name: str
    order_by: str = "destination"
    lanes: int = 1
    steps: Any = None  # a compiled mappings.steps.Program, or None
    # The territory's shared record (``shared_record: true``): no delivery for a patient who
    # opposed sharing (engine.flow.consent).
    shared_record: bool = False
    # What it is sent as: a mappings.transforms.chain.TransformChain (ORU -> CDA...), or None
    transform: Any = None


@dataclass(frozen=True)
class ChannelPlan:
    """A channel as the intake and :func:`~engine.flow.decision.decide` see it.

    ``marked_slow`` is the channel file's ``slow: true``: the engineer knows that its steps
    are costly even though none of them is a ``python:`` step.
    """

    name: str
    destinations: tuple[DestinationPlan, ...]
    encoding: str = "UNICODE UTF-8"
    response: ResponsePolicy = ResponsePolicy()  # when the intake acknowledges, and what
    dedupe: bool = True
    filters: Any = None  # compiled mappings.steps.Program objects, or None
    steps: Any = None
    validation: str = VALIDATION_NONE
    version: str | None = None  # the version structural validation checks against
    marked_slow: bool = False
    identity: Any = None  # an engine.flow.hook.MessageHook (the identity: step), or None
    consent: Any = None  # an engine.flow.consent.ConsentPlan, or None
    # Where oppositions are looked up (engine.interfaces.ConsentLookup); None in test-channel.
    consent_lookup: Any = field(default=None, compare=False, repr=False)
    # How a document this channel stored names its patient (``document_patient(raw) ->
    # CX``, xds.transforms.payload's, wired by engine/app.py): a document processed again
    # is consent-checked as at its first intake. None: documents have no known patient.
    document_patient: Any = field(default=None, compare=False, repr=False)

    @cached_property
    def shares(self) -> bool:
        """Whether a destination is the shared record, so that consent is checked."""
        return any(d.shared_record for d in self.destinations)

    @cached_property
    def needs_patient(self) -> bool:
        return any(d.order_by == ORDER_BY_PATIENT for d in self.destinations)

    @cached_property
    def routed_decisions(self) -> dict[tuple[int, ...], Any]:
        """The shared decisions of a plan without steps, by the lane of each destination
        (:func:`engine.flow.decision.routed` fills it); a reload builds a new plan."""
        return {}

    @cached_property
    def route_table(self) -> list[tuple[str, str, int]]:
        """(name, ordering key, lanes) of each destination, as routing reads them."""
        return [(d.name, d.order_by, d.lanes) for d in self.destinations]

    @property
    def reads_hl7(self) -> bool:
        """Whether deciding reads the HL7 v2 text (steps, filters, validation, an
        ``identity:`` step, a ``consent:`` field, a transform): a channel of documents
        (an ``xds`` source) cannot, and only routes (:mod:`engine.flow.documents`)."""
        return not (self.filters is None and self.steps is None and self.identity is None
                    and self.validation == VALIDATION_NONE and self.consent is None
                    and all(d.steps is None and d.transform is None
                            for d in self.destinations))

    @cached_property
    def routes_only(self) -> bool:
        """True when the plan has no step at all: every message goes to every destination.
        Computed once per plan object, read for every message."""
        return (self.filters is None and self.steps is None and self.identity is None
                and self.validation == VALIDATION_NONE
                and self.consent is None and not self.shares
                and all(d.steps is None and d.transform is None for d in self.destinations))

    @cached_property
    def slow(self) -> bool:
        """Whether deciding a message may take long enough to hold other channels' ACKs.

        A ``python:`` step (at any depth: inside a for-each too) runs code whose cost nobody
        knows, structural validation (hl7apy) costs milliseconds, and a channel may say
        ``slow: true``. Such a plan is decided in a worker thread after the message's
        RECEIVED commit; any other (built-in steps are tens of microseconds) on the reactor
        thread before its one commit. An ``identity:`` step asks the patient index, a database:
        slow too; so does a shared-record destination: whether the patient opposed sharing is
        read from the store, which the reactor thread never waits for. Computed once per plan
        object: a reload builds a new one.
        """
        if (self.marked_slow or self.validation != VALIDATION_NONE or self.identity is not None
                or self.shares):
            return True
        if any(d.transform is not None for d in self.destinations):
            return True  # a document built per message: XML, milliseconds
        programs = [self.filters, self.steps] + [d.steps for d in self.destinations]
        return any(calls_python(program.steps) for program in programs if program is not None)


def calls_python(steps: Iterable[Any]) -> bool:
    """Whether any of ``steps``, or of the steps they hold (for-each...), is ``python:``."""
    for step in steps:
        if isinstance(step, PythonStep):
            return True
        nested = getattr(step, "steps", None)
        if nested is not None and calls_python(nested):
            return True
    return False


@dataclass(frozen=True)
class InboundMessage:
    """A message to decide: its text decoded once, at intake (or by the recovery scan)."""

    message_id: int  # 0 while the message is not committed yet (a fast plan decides first)
    text: str
    field_separator: str = "|"
    encoding_characters: str = "^~\\&"
    raw: bytes = b""  # as stored: a payload equal to it is not stored again per delivery
    control_id: str | None = None
    message_type: str | None = None
    charset: str | None = None
    # Its MSH as the intake read it (the application ACK answers it); None when the message
    # comes from the store (the recovery scan), whose MSH is read again from ``raw``.
    header: Any = None
    # Whether its sender can be answered an application ACK (it came over MLLP): a message
    # from a file or handed over by another channel has nobody to answer.
    answerable: bool = True
    peer: str = ""  # where it came from, as stored (``mllp://host:port``)
