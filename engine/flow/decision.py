"""
One decision per message: what a channel's plan makes of it, as a pure function.

:func:`decide` is the only place a message's outcome is decided, wherever it runs: on the
reactor thread before the message's one commit (a fast plan), in a worker thread after its
RECEIVED commit (a slow plan, :mod:`engine.flow.decider`), for a message the recovery scan
finds RECEIVED (a crash, ``messages replay --reprocess``), and in ``aiguillage test-channel``.
Its :class:`~engine.store.records.Decision` is committed by one store write
(:class:`engine.store.ops.IngestOp`) whichever way it came.

A plan without steps routes: every destination gets the message, on the lane its ordering
gives it (TRANSFORMED). Otherwise the text is parsed once
(:class:`mappings.message.HL7Message`), validated if asked (hl7apy), run through the filters
(a failed one: FILTERED) and the channel's steps (a :class:`mappings.steps.StepFailure`: ERROR,
naming the step, path and value; a ``stop``: FILTERED), then, for each destination (only those
a ``route`` step named, if one ran), through a copy of the result and that destination's own
steps. Each delivery carries the bytes to send, encoded with the message's character set, or
None when they are the message's raw bytes (stored once, not per delivery); for a destination
with a ``transform:`` (its channel's, then its own), the document the transform makes of the
message after the steps (a CDA, an XDS submission: bytes that say what they are, see
:mod:`xds.transforms.payload`); a transform that refuses the message makes it an ERROR naming
the transform. A destination whose steps stop gets no delivery. A channel's ``consent:``
section reads the patient's opposition to sharing from the message (committed with the
decision), and a ``shared_record`` destination gets no delivery for a patient who opposed
(:mod:`engine.flow.consent`; the reason is on the journal line, the other destinations served).
Any other exception (a bug in a ``python:`` step, a store that cannot be read for consent) is
an ERROR naming it: a message is never lost to a decision.

``trace``, for ``aiguillage test-channel`` (:mod:`engine.cli.channeltest.runner`): a callable
given ``(destination, StepTrace)`` after each top-level step of the filters and steps
(destination None) and of each destination's steps.

test-case-name: tests.flow.test_decision
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from engine import status as st
from engine.flow.documents import is_document, stored_document_decision
from engine.flow.plan import VALIDATION_STRUCTURE, ChannelPlan, InboundMessage
from engine.flow.routing import lanes_for, patient_key, plan_deliveries
from engine.store.records import Decision, NewDelivery

log = logging.getLogger(__name__)

def decide(plan: ChannelPlan, message: InboundMessage,
           trace: Callable[[str | None, Any], None] | None = None) -> Decision:
    """What ``plan`` makes of ``message``: status, error, journal detail, deliveries."""
    try:
        if is_document(message.raw):  # an XDS submission stored by its source: no MSH
            return stored_document_decision(plan, message.raw, message.message_type,
                                            message.control_id)
        if plan.routes_only:
            return routed(plan, message.text, message.field_separator,
                          message.encoding_characters)
        deliveries = route(plan, message.text, message.field_separator,
                           message.encoding_characters)
        return _Run(plan, message, trace).deliveries(deliveries)
    except Exception as exc:  # a bug in a step must not lose the message: ERROR, stored
        log.exception("deciding message %s of channel %s failed", message.control_id,
                      plan.name)
        return Decision(st.ERROR, error=f"{type(exc).__name__}: {exc}")


def route(channel: ChannelPlan, text: str, field_separator: str = "|",
          encoding_characters: str = "^~\\&") -> tuple[NewDelivery, ...]:
    """One delivery per destination, on the lane its ordering policy gives this message."""
    patient = ""
    if channel.needs_patient:
        patient = patient_key(text, field_separator, encoding_characters[0],
                              encoding_characters[1])
    return plan_deliveries(channel.route_table, patient)


def routed(channel: ChannelPlan, text: str, field_separator: str = "|",
           encoding_characters: str = "^~\\&") -> Decision:
    """The decision of a plan without steps: TRANSFORMED, one delivery per destination on
    the lane its ordering gives this message.

    It depends on the lanes alone, so it is made once per combination of lanes and shared
    by the messages that fall on them (a Decision never changes): the plan keeps them
    (:attr:`ChannelPlan.routed_decisions`, as many as the product of its lane counts)."""
    patient = ""
    if channel.needs_patient:
        patient = patient_key(text, field_separator, encoding_characters[0],
                              encoding_characters[1])
    lanes = lanes_for(channel.route_table, patient)
    made = channel.routed_decisions.get(lanes)
    if made is None:
        made = Decision(st.TRANSFORMED, deliveries=plan_deliveries(channel.route_table,
                                                                   patient))
        channel.routed_decisions[lanes] = made
    return made


class _Refused(Exception):
    """The message cannot go on: ``status`` (ERROR or FILTERED) and why; ``code`` and
    ``location``, the table 0357 code and ERR-2 location when HL7 has a name for why."""

    def __init__(self, status: str, text: str, code: int | None = None, location: str = "",
                 response: bytes | None = None):
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code
        self.location = location
        self.response = response  # what answers the sender instead of an ACK (a query)


class _Run:
    """One message through a channel with mappings."""

    def __init__(self, channel: ChannelPlan, message: InboundMessage,
                 trace: Callable[[str | None, Any], None] | None = None):
        self.channel = channel
        self.message = message
        self.trace = trace
        self.made: dict = {}  # what the transforms made of this message, by chain prefix

    def deliveries(self, planned: tuple[NewDelivery, ...]) -> Decision:
        channel, message = self.channel, self.message
        try:
            if channel.validation == VALIDATION_STRUCTURE:
                validate_structure(message.text, channel.version)
            parsed = self._parse(message.text)
            routes = None
            for program in (channel.filters, channel.steps):
                if program is not None:
                    outcome = self._run(program, parsed)
                    if outcome.routes is not None:
                        routes = outcome.routes if routes is None else routes | outcome.routes
            found, warnings = self._identity(parsed)
            text = parsed.to_text()
            steps = {d.name: (d.steps, d.transform) for d in channel.destinations}
            change, blocked, shared = self._consent(parsed, routes)
            made, stopped = [], []
            for delivery in planned:
                if routes is not None and delivery.destination not in routes:
                    continue
                if blocked is not None and delivery.destination in shared:
                    stopped.append(f"{delivery.destination}: {blocked}")
                    continue
                payload, reason = self._payload(text, *steps.get(delivery.destination,
                                                                 (None, None)),
                                                delivery.destination, parsed)
                if reason is not None:
                    stopped.append(f"{delivery.destination}: {reason}")
                    continue
                made.append(NewDelivery(delivery.destination, delivery.lane, payload))
        except _Refused as refused:
            error = refused.text if refused.status == st.ERROR else None
            return Decision(refused.status, error=error, detail=refused.text,
                            error_code=refused.code, error_location=refused.location,
                            response=refused.response)
        consent = (change,) if change is not None else ()
        if not made and stopped:
            return Decision(st.FILTERED, detail="; ".join(filter(None, [found] + stopped)),
                            consent=consent)
        notes = [found] + (["not sent to " + "; ".join(stopped)] if stopped else [])
        notes += _transformed_into(self.channel, made)
        return Decision(st.TRANSFORMED, detail="; ".join(filter(None, notes)) or None,
                        deliveries=tuple(made), warnings=warnings, consent=consent)

    def _identity(self, parsed: Any) -> tuple[str | None, tuple]:
        """Run the channel's ``identity:`` step (:mod:`engine.flow.hook`), if it has one;
        its journal line and warnings. A query it answered goes nowhere (FILTERED, its answer
        kept); a message it refused is an ERROR with the ERR code and location it gives."""
        hook = self.channel.identity
        if hook is None:
            return None, ()
        outcome = hook.run(parsed, self.message)
        if outcome.error is not None:
            raise _Refused(st.ERROR, outcome.error, outcome.code, outcome.location,
                           outcome.answer)
        if outcome.answered:
            raise _Refused(st.FILTERED, outcome.detail or "answered", response=outcome.answer)
        return outcome.detail, outcome.warnings

    def _consent(self, parsed: Any, routes: Any) -> tuple[Any, str | None, set[str]]:
        """(what the message says of its patient's consent, why the shared-record
        destinations get nothing or None, their names)."""
        from engine.flow.consent import consent_change, refusal

        channel = self.channel
        change = consent_change(channel.consent, parsed) if channel.consent else None
        shared = {d.name for d in channel.destinations if d.shared_record}
        if routes is not None:
            shared &= set(routes)
        if not shared:
            return change, None, shared
        return change, refusal(channel.consent, channel.consent_lookup, parsed, change), shared

    @staticmethod
    def _parse(text: str) -> Any:
        from mappings.message import HL7Message, MessageError

        try:
            return HL7Message.parse(text)
        except MessageError as error:
            raise _Refused(st.ERROR, f"the message cannot be parsed: {error}") from None

    def _run(self, program: Any, parsed: Any, destination: str | None = None) -> Any:
        from mappings.steps import StepFailure

        trace = self.trace
        try:
            if trace is None:
                outcome = program.run(parsed)
            else:
                outcome = program.run(parsed, lambda step: trace(destination, step))
        except StepFailure as failure:
            raise _Refused(st.ERROR, str(failure)) from None
        if outcome.stopped:
            raise _Refused(st.FILTERED, outcome.reason or "stopped by a step")
        return outcome

    def _payload(self, text: str, steps: Any, transform: Any = None, destination: str = "",
                 parsed: Any = None) -> tuple[bytes | None, str | None]:
        """(the bytes for one destination or None for the raw message, why it is not sent).

        A destination's transform (the channel's, then its own) makes its document of the
        message as its steps left it (``parsed``, the channel's result, when it has none):
        that document is what it is sent. Transforms read the message, never change it.
        """
        copy = None
        if steps is not None:
            copy = self._parse(text)
            try:
                self._run(steps, copy, destination)
            except _Refused as refused:
                if refused.status == st.FILTERED:
                    return None, refused.text
                raise
            text = copy.to_text()
        if transform is not None:
            return self._transformed(transform, copy if copy is not None else parsed), None
        if text == self.message.text:
            return None, None
        payload = self._encode(text)
        return (None if payload == self.message.raw else payload), None

    def _transformed(self, transform: Any, message: Any) -> bytes:
        """The document ``transform`` makes of ``message``; a refusal is an ERROR naming the
        transform and why (a message that is no ORU, an MDM without a document...)."""
        from mappings.transforms.chain import TransformFailed

        try:
            return transform.apply(message, self.made)
        except TransformFailed as failure:
            raise _Refused(st.ERROR, str(failure)) from None

    def _encode(self, text: str) -> bytes:
        from mllp.header import resolve_codec

        charset = self.message.charset or self.channel.encoding
        try:
            return text.encode(resolve_codec(charset))
        except (LookupError, UnicodeEncodeError) as error:
            raise _Refused(st.ERROR, f"the mapped message cannot be written in {charset}: "
                                     f"{error}") from None


def _transformed_into(channel: ChannelPlan, made: list[NewDelivery]) -> list[str]:
    """``dmp: oru-to-cda then cda-to-xds -> application/xds-pnr+xml``: what each delivery
    with a transform carries, for the message's journal (the payload says it too)."""
    chains = {d.name: d.transform for d in channel.destinations if d.transform is not None}
    return [f"{d.destination}: {chains[d.destination].name} -> "
            f"{chains[d.destination].media_type}" for d in made if d.destination in chains]


def validate_structure(text: str, version: str | None = None) -> None:
    """Check ``text`` against its HL7 v2 message structure (hl7apy, strict); raise
    :class:`_Refused` (ERROR) with the validator's text, and the table 0357 code and
    location :func:`engine.flow.structure.classify` finds for it, when it does not conform.

    With ``version``, the structures of that version are used whatever MSH-12 says, as HAPI's
    canonical version does: senders label their messages loosely (2.5.1, 2.9, 2.3 with 2.5
    segments), and an engineer validates against what the channel was written for. The stored
    message keeps its own MSH-12: only the validator's copy is relabelled.
    """
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    segments = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    own_version = _version_of(segments)  # the ACK's, so the code must exist in it
    if version is not None:
        segments = with_version(segments, version)
    try:
        parse_message(segments, validation_level=VALIDATION_LEVEL.STRICT,
                      find_groups=True).validate()
    except Exception as error:  # hl7apy raises many kinds, all meaning "does not conform"
        from engine.flow.structure import classify

        detail = str(error) or type(error).__name__
        code, location = classify(error, segments, own_version)
        where = f" (at {location})" if location else ""
        raise _Refused(st.ERROR, f"structural validation failed: {detail}{where}", code,
                       location) from None


def _version_of(text: str) -> str:
    """MSH-12.1 of ``text``, ``""`` when it cannot be read."""
    head = text.partition("\r")[0]
    if len(head) < 5 or not head.startswith("MSH"):
        return ""
    fields = head.split(head[3])
    return fields[11].split(head[4])[0] if len(fields) > 11 else ""


def with_version(text: str, version: str) -> str:
    """``text`` with MSH-12.1 (the version id) set to ``version``, the rest untouched."""
    head, cr, rest = text.partition("\r")
    if len(head) < 8 or not head.startswith("MSH"):
        return text
    separator, component = head[3], head[4]
    fields = head.split(separator)
    while len(fields) < 12:
        fields.append("")
    fields[11] = component.join([version] + fields[11].split(component)[1:])
    return separator.join(fields) + cr + rest
