"""
Enhanced-mode application acknowledgements, decided with the message.

HL7 v2 chapter 2's enhanced mode splits the answer in two: the accept ACK (MSH-15: CA once
the message is committed, see :mod:`engine.flow.intake`) and the application ACK (MSH-16:
AA, AE or AR once the pipeline's outcome is known). The application ACK is built here from
the :class:`~engine.store.records.Decision` and added to it as one more delivery, to the
engine's own destination :data:`APPLICATION_ACK`, whose payload is the ACK's bytes: it is
committed in the same write as the decision, so it is stored, retried, survives a crash and
shows in ``messages show`` like any delivery. :mod:`engine.flow.appack_route` sends it.

The application ACK is the message's answer: MSH-9 ``ACK^<trigger>^ACK``, MSA-2 the
message's MSH-10, the ERR of the decision on an error; it asks for no ACK itself (MSH-15 and
MSH-16 ``NE``), as chapter 2 has the receiver of an application ACK send none.

A query (QBP, QCN) that a hook answered (``Decision.response``: an RSP, or the ACK of a
cancel) has that answer as its application response, as chapter 5 has it in enhanced mode
and as HAPI and the IHE actors expect: CA at commit, then the RSP by the same route. It goes
whatever MSH-16 says, since a query is sent for its answer; it stands in for the ACK.

test-case-name: tests.flow.test_appack
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import time
from typing import Any

from engine import status as st
from engine.flow.plan import ChannelPlan
from engine.flow.response import APPLICATION_ACK
from engine.store.records import Decision, NewDelivery
from mllp import ack
from mllp.header import HeaderError, MSHHeader, read_header_leniently

NO_ACK = ("NE", "NE")  # MSH-15/16 of an application ACK: it is not acknowledged itself

_counter = itertools.count(1)
_PREFIX = f"{os.getpid():x}{int(time.time()) % 0xFFFF:x}"


def outcome_of(plan: ChannelPlan, decision: Decision) -> str:
    """What processing came to, as an ACK outcome: accept (TRANSFORMED, or FILTERED when
    the channel answers filtered messages AA), error, or reject (``on-error: AR``)."""
    if decision.status == st.ERROR:
        return plan.response.error_outcome
    if decision.status == st.FILTERED:
        return plan.response.filtered_outcome
    return ack.ACCEPT


def application_ack(plan: ChannelPlan, header: MSHHeader, decision: Decision,
                    *, control_id: str, timestamp: str) -> bytes | None:
    """The application ACK MSH-16 asks for after ``decision``, or None when it asks none."""
    outcome = outcome_of(plan, decision)
    if not ack.application_ack_wanted(header, outcome):
        return None
    errors: tuple[ack.HL7Error, ...] = ()
    text = ""
    if decision.status == st.ERROR:
        text = decision.error or "processing failed"
        errors = (ack.HL7Error(decision.error_code or ack.APPLICATION_INTERNAL_ERROR, text,
                               decision.error_location),)
    elif decision.status == st.FILTERED:
        text = "filtered"
    else:
        errors = warnings_of(decision)
    response = plan.response
    return ack.build_ack(header, ack.application_ack_code(outcome), text=text, errors=errors,
                         control_id=control_id, timestamp=timestamp,
                         sending_application=response.sending_application,
                         sending_facility=response.sending_facility, ack_types=NO_ACK)


def with_application_ack(plan: ChannelPlan, header: MSHHeader | None, decision: Decision,
                         raw: bytes = b"") -> Decision:
    """``decision`` with the delivery of its application ACK added, when MSH-16 asks one.

    ``header`` None: read from ``raw`` (a message from the store, decided by the recovery
    scan or the decider without the intake's reading of it).
    """
    if header is None:
        try:
            header = read_header_leniently(raw)
        except HeaderError:
            return decision
    answers = ack.answers_for(header)
    if answers.mode == ack.ORIGINAL:
        return decision
    if decision.response is not None:  # a query's answer is its application response
        payload = decision.response
    elif not answers.application or outcome_of(plan, decision) not in answers.application:
        return decision  # MSH-16 asks none (NE, the usual): nothing to build
    else:
        payload = application_ack(plan, header, decision, control_id=next_control_id(),
                                  timestamp=time.strftime("%Y%m%d%H%M%S"))
    if payload is None:
        return decision
    delivery = NewDelivery(APPLICATION_ACK, 0, payload)
    return dataclasses.replace(decision, deliveries=decision.deliveries + (delivery,))


def warnings_of(decision: Decision) -> tuple[ack.HL7Error, ...]:
    """The ERR segments (severity W) of a message that went through with warnings."""
    return tuple(ack.HL7Error(code, text, location, severity="W")
                 for code, text, location in decision.warnings)


def answerable(peer: Any) -> bool:
    """Whether a message from ``peer`` (a PeerInfo, or the text stored with the message) can be
    answered an application ACK: it came over MLLP, plain or TLS."""
    transport = getattr(peer, "transport", None)
    if transport is None:
        transport = str(peer or "").partition("://")[0]
    return transport.startswith("mllp")


def next_control_id() -> str:
    """MSH-10 of an application ACK: ``AP`` + this process's prefix + a counter."""
    return f"AP{_PREFIX}-{next(_counter)}"


__all__ = ["APPLICATION_ACK", "NO_ACK", "answerable", "application_ack", "next_control_id",
           "outcome_of", "warnings_of", "with_application_ack"]
