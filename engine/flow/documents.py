"""
The intake of documents that are not HL7 v2: what an XDS.b Document Recipient (the ``xds``
source) hands over, committed as a message of its channel before the source answers.

Why a path of its own: the HL7 intake reads MSH to describe, deduplicate and acknowledge a
message, and a submission has none. The source says what describes it
(:class:`engine.interfaces.InboundDocument`: message type, control id, sender) and answers in
its own protocol once the commit is known. Like every message, it is committed with its
decision in one transaction (:class:`engine.store.ops.IngestOp`): a channel that only routes
gets one delivery per destination (TRANSFORMED); steps, filters, validation and transforms
read HL7 v2, so a document channel that has them stores the document in ERROR saying so.
A document the source refused is stored in ERROR with its reason. A document processed again
(``messages replay --reprocess``, the recovery scan) is decided by
:func:`engine.flow.decision.decide` the same way, recognised by :func:`is_document`. The same sender and
control id again is a DUPLICATE, not delivered twice (a Document Source resending after a
lost answer).

test-case-name: tests.flow.test_documents
"""
from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer, threads

from engine import status as st
from engine.flow.consent import cx_identifiers, stored_refusal
from engine.flow.plan import ChannelPlan
from engine.flow.queued import QueuedWork
from engine.flow.routing import plan_deliveries
from engine.interfaces import InboundDocument
from engine.store.records import HEADER_LIMITS, SENDER_LENGTH, Decision, InboundRecord

DOCUMENT_CHARSET = "UNICODE UTF-8"  # the stored forms are XML written in UTF-8
MAX_STORED_ERROR = 4000


def is_document(raw: bytes) -> bool:
    """Whether stored bytes are a document of this path (XML) rather than HL7 v2, which
    always starts with MSH: how a replay or the recovery scan tells them apart."""
    return raw[:1] == b"<"


def document_decision(plan: ChannelPlan, document: InboundDocument,
                      opposed: str | None = None) -> Decision:
    """What a channel makes of a document: routed, or ERROR when the source refused it or
    the channel asks for HL7 v2 processing. ``opposed``: why the patient's document goes to
    no shared-record destination (:func:`consent_refusal`), the others still served."""
    if document.error is not None:
        return Decision(st.ERROR, error=document.error[:MAX_STORED_ERROR])
    if plan.reads_hl7:
        return Decision(st.ERROR, error=(
            f"channel {plan.name} has steps, filters, validation or a transform, which read "
            f"HL7 v2 messages; a {document.message_type} document can only be routed"))
    deliveries = plan_deliveries(plan.route_table, document.patient)
    if opposed is None:
        return Decision(st.TRANSFORMED, deliveries=deliveries)
    shared = {d.name for d in plan.destinations if d.shared_record}
    kept = tuple(d for d in deliveries if d.destination not in shared)
    stopped = "; ".join(f"{name}: {opposed}" for name in sorted(shared))
    if not kept:
        return Decision(st.FILTERED, detail=stopped)
    return Decision(st.TRANSFORMED, detail="not sent to " + stopped, deliveries=kept)


def stored_document_decision(plan: ChannelPlan, raw: bytes, message_type: str | None,
                             control_id: str | None) -> Decision:
    """What a channel makes of a document it stored, processed again (``messages replay
    --reprocess``, the recovery scan): its patient read back from the stored bytes
    (:attr:`ChannelPlan.document_patient`) and, as at first intake, their opposition to
    sharing looked up (blocking: a plan feeding the shared record is decided in a worker
    thread). Raises what reading or the store raise (decide makes it an ERROR)."""
    patient = plan.document_patient(raw) if plan.document_patient is not None else ""
    document = InboundDocument(raw, message_type or "document", control_id, patient=patient)
    return document_decision(plan, document, consent_refusal(plan, document))


def withheld_from_shared_record(plan: ChannelPlan, raw: bytes) -> dict[str, str]:
    """The shared-record destinations a stored document may not be sent to again by a replay
    that re-queues its failed deliveries, each with why: its patient's opposition, looked up
    as at first intake (blocking). Empty for any other message or channel."""
    if not plan.shares or plan.consent_lookup is None or not is_document(raw):
        return {}
    patient = plan.document_patient(raw) if plan.document_patient is not None else ""
    reason = consent_refusal(plan, InboundDocument(raw, "document", patient=patient))
    if reason is None:
        return {}
    return {d.name: reason for d in plan.destinations if d.shared_record}


def consent_refusal(plan: ChannelPlan, document: InboundDocument) -> str | None:
    """Why the document's patient's shared-record destinations get nothing, read from the
    store (blocking: call it off the reactor thread), or None."""
    if not plan.shares or plan.consent_lookup is None or document.error is not None:
        return None
    return stored_refusal(plan.consent_lookup, cx_identifiers(document.patient))


def ingest_document(store: Any, queued: QueuedWork, plan: ChannelPlan,
                    document: InboundDocument, peer: str) -> defer.Deferred:
    """Commit ``document`` with its decision; Deferred firing with the IngestResult once
    committed, its deliveries handed to their lanes. A channel feeding the shared record
    first reads, in a thread, whether the patient opposed sharing."""
    if plan.shares and plan.consent_lookup is not None and document.error is None:
        looked_up = threads.deferToThread(consent_refusal, plan, document)
    else:
        looked_up = defer.succeed(None)
    return looked_up.addCallback(
        lambda opposed: _commit(store, queued, plan, document, peer, opposed))


def _commit(store: Any, queued: QueuedWork, plan: ChannelPlan, document: InboundDocument,
            peer: str, opposed: str | None) -> defer.Deferred:
    decision = document_decision(plan, document, opposed)
    refused = document.error is not None  # stored in ERROR as such, as unreadable HL7 is
    record = InboundRecord(
        channel=plan.name, received_at=time.time(), peer=peer, raw=document.payload,
        status=st.ERROR if refused else st.RECEIVED,
        sender=_cut(document.sender, SENDER_LENGTH),
        control_id=_cut(document.control_id, HEADER_LIMITS[10]),
        message_type=_cut(document.message_type, HEADER_LIMITS[9]), charset=DOCUMENT_CHARSET,
        error=decision.error if refused else None, dedupe=plan.dedupe and not refused,
        decision=None if refused else decision)

    def committed(result: Any) -> Any:
        if result.delivery_ids:
            queued.add(plan.name, decision.deliveries)
        return result

    # transaction boundary: the document, its status and its deliveries, in one commit
    return store.ingest(record).addCallback(committed)


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None
