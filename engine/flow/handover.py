"""
Channels feeding channels: the ``channel`` destination and the ``channel`` source.

Mirth's Channel Writer and Channel Reader. A delivery to a ``type: channel`` destination hands
its payload (the bytes this destination would send, the channel's and the destination's steps
applied) to the target channel's intake as a new inbound message of that channel, which then
goes through that channel's own filters, steps and destinations. So a common normalisation
channel can feed many outputs, each written once.

The delivery is SENT only once the new message is committed: "persist before acknowledge"
holds across the hop, and a store failure fails the send, which the lane retries like any
other. A hand-over made twice (the engine stopped between the target's commit and the SENT
of the delivery, then sent it again) is answered by the target channel's dedupe on sender and
MSH-10: stored as DUPLICATE and not processed again. The lane sends one delivery at a time
and the intake commits in the order it is called, so the hop keeps each lane's order.

Why this lives in ``engine/`` and not with the connectors in ``channels/``: a connector there
adapts a transport and sees the engine only through :mod:`engine.interfaces`, built by a
registry factory from its options alone. This one has no transport: it is the engine handing
a message to itself, and it needs the engine's :class:`~engine.flow.intake.Intake`, which exists
only once the composition root has built it. Widening every registry factory with a context
object for this one connector's sake would put a seam in all of them that only one uses;
keeping it here lets ``engine/app.py`` pass the intake to its constructor, in plain sight,
and leaves ``channels/`` knowing nothing of the engine's inside.

test-case-name: tests.flow.test_handover
"""
from __future__ import annotations

from typing import Any, Mapping

from twisted.internet import defer

from engine import status as st
from engine.flow.intake import HANDOVER_TRANSPORT
from engine.interfaces import (
    ConnectorSpec, DeliveryContext, DeliveryFailed, DeliveryOutcome, OptionSpec, PeerInfo)
from engine.store.records import IngestResult

TYPE = "channel"  # the ``type:`` of both connectors in channel YAML
TARGET_OPTION = "channel"

DESTINATION_SPEC = ConnectorSpec(
    role="destination", type_name=TYPE,
    help="Hand each message to another channel of this engine, as a new inbound message.",
    options=(OptionSpec(TARGET_OPTION, "str", required=True,
                        help="the channel that receives each message"),))
SOURCE_SPEC = ConnectorSpec(
    role="source", type_name=TYPE,
    help="Listen on nothing: the channel's messages come from other channels' destinations.")
SPECS: dict[tuple[str, str], ConnectorSpec] = {
    ("source", TYPE): SOURCE_SPEC, ("destination", TYPE): DESTINATION_SPEC}


def peer_of(context: DeliveryContext) -> PeerInfo:
    """Where a handed-over message comes from, as the target stores it:
    ``channel:adt-in/message 42`` in ``aiguillage messages show``."""
    return PeerInfo(HANDOVER_TRANSPORT, f"{context.channel}/message {context.message_id}")


class ChannelDestination:
    """One lane's hand-over to the channel named by the ``channel`` option.

    ``intake`` is the engine's :class:`~engine.flow.intake.Intake` (None when the destination is
    only built to check its options, as ``check-config`` does).
    """

    def __init__(self, name: str, channel: str, lane: int, options: Mapping[str, Any],
                 intake: Any):
        self.name = name
        self.channel = channel
        self.lane = lane
        self.target = _options(DESTINATION_SPEC, name, options)[TARGET_OPTION]
        self._intake = intake

    def start(self) -> None:
        """Nothing to open: the target channel is in this engine."""

    def stop(self) -> None:
        """Nothing to close."""

    def send(self, payload: bytes, context: DeliveryContext) -> defer.Deferred:
        """Hand ``payload`` over; Deferred[DeliveryOutcome] once the target committed it,
        failing with a retryable :class:`DeliveryFailed` when it could not be committed."""
        d = defer.maybeDeferred(self._intake.hand_over, self.target, payload,
                                peer_of(context), context.charset)
        d.addCallbacks(self._committed, self._failed)
        return d

    def _committed(self, result: IngestResult) -> DeliveryOutcome:
        text = describe_commit(self.target, result)
        return DeliveryOutcome(response=text.encode("utf-8"), detail=text)

    def _failed(self, failure: Any) -> None:
        raise DeliveryFailed(f'channel "{self.target}" could not take the message: '
                             f"{failure.getErrorMessage()}", retryable=True)


def describe_commit(target: str, result: IngestResult) -> str:
    """What the delivery's response says: where the message now is, and as what."""
    text = f'committed as message {result.message_id} of channel "{target}"'
    if result.status == st.DUPLICATE:
        return f"{text}, a duplicate of message {result.duplicate_of}: not processed again"
    if result.status == st.ERROR:
        return f"{text}, in ERROR: it cannot be read or processed there (see that message)"
    if result.status == st.FILTERED:  # its pipeline ran as it was committed
        return f"{text}, FILTERED there"
    return text


class ChannelSource:
    """The source of a channel fed only by other channels: it listens on nothing.

    Any channel may be handed messages, whatever its source; this one only says that the
    channel has no other way in. ``port`` is None, as the engine's ``source_port`` reports.
    """

    port = None

    def __init__(self, name: str, channel: str, options: Mapping[str, Any]):
        _options(SOURCE_SPEC, name, options)
        self.name = name
        self.channel = channel

    def start(self) -> None:
        """Nothing to listen on."""

    def stop(self) -> None:
        """Nothing to close."""


def _options(spec: ConnectorSpec, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``spec``: every declared one (all are required text
    here), nothing else.

    The configuration loader has checked them already; this is for code (and tests) that
    builds the connectors directly, as ``channels.options.resolve`` does for the others.
    """
    who = f'{spec.role} "{name}" ({spec.type_name})'
    declared = {option.name for option in spec.options}
    unknown = sorted(set(options) - declared)
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ValueError(f"{who}: unknown option(s) {', '.join(unknown)}; known: {known}")
    values = {}
    for option in spec.options:
        value = options.get(option.name)
        if not isinstance(value, str) or not value:
            raise ValueError(f'{who}: missing required option "{option.name}"')
        values[option.name] = value
    return values


__all__ = ["TYPE", "SPECS", "DESTINATION_SPEC", "SOURCE_SPEC", "ChannelDestination",
           "ChannelSource", "describe_commit", "peer_of"]
