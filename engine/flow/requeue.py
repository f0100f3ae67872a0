"""
What a re-queue (``aiguillage messages replay`` without ``--reprocess``) may not send again:
the shared-record deliveries of a patient who opposed sharing since the message came in.

Why here and not only for documents: a re-queue sends the parked deliveries as they are,
without deciding the message again, so the consent check of its first intake is not re-run by
itself. An HL7 v2 message (an ORU whose CDA goes to the shared record, an MDM) and a stored
XDS submission are both looked up again, each as the intake first looked it up: the HL7
message's own word (its opposition field, :mod:`engine.flow.consent`) then the store's record;
a document's patient read back from the stored submission (:mod:`engine.flow.documents`).
Blocking: the CLI calls it in its own process.

test-case-name: tests.flow.test_requeue
"""
from __future__ import annotations

from engine.flow.consent import consent_change, refusal
from engine.flow.documents import is_document, withheld_from_shared_record
from engine.flow.plan import ChannelPlan
from mllp.header import EncodingError, HeaderError, decode_payload, read_header


def withheld_on_requeue(plan: ChannelPlan, raw: bytes) -> dict[str, str]:
    """The shared-record destinations of ``plan`` that the stored message ``raw`` may not be
    sent to again, each with why; empty when nothing is withheld or the channel shares
    nothing."""
    if not plan.shares or plan.consent_lookup is None:
        return {}
    if is_document(raw):
        return withheld_from_shared_record(plan, raw)
    reason = _hl7_refusal(plan, raw)
    if reason is None:
        return {}
    return {d.name: reason for d in plan.destinations if d.shared_record}


def _hl7_refusal(plan: ChannelPlan, raw: bytes) -> str | None:
    from mappings.message import HL7Message, MessageError

    try:
        header = read_header(raw)
        parsed = HL7Message.parse(decode_payload(raw, header, plan.encoding))
    except (HeaderError, EncodingError, MessageError):
        return None  # it was decided once, so readable then; nothing to check against now
    change = consent_change(plan.consent, parsed) if plan.consent is not None else None
    return refusal(plan.consent, plan.consent_lookup, parsed, change)
