"""What a channel makes of a document that is not HL7 v2 (engine/flow/documents.py): routed
to every destination, ERROR when the source refused it or the channel asks for HL7 v2
processing. Committing it, deduplicating it and answering after the commit are tested end to
end in tests/e2e/test_xds.py."""
from __future__ import annotations

from engine import status as st
from engine.flow.documents import document_decision
from engine.flow.plan import ChannelPlan, DestinationPlan
from engine.interfaces import InboundDocument

DOCUMENT = InboundDocument(b"<xds/>", "ITI-41", control_id="1.2.3", sender="1.2.4",
                           patient="P1^^^&1.2.5&ISO")


def plan(**destination) -> ChannelPlan:
    return ChannelPlan("hospital", (DestinationPlan("dmp", **destination),
                                    DestinationPlan("archive")))


def test_a_document_is_routed_to_every_destination():
    """If the channel only routes, then each destination gets one delivery of the stored
    bytes (no payload of its own)."""
    decision = document_decision(plan(), DOCUMENT)
    assert decision.status == st.TRANSFORMED
    assert [(d.destination, d.payload) for d in decision.deliveries] == [
        ("dmp", None), ("archive", None)]


def test_documents_of_one_patient_share_a_lane():
    """If a destination orders by patient, then the submission's patient picks the lane, the
    same for the same patient."""
    ordered = plan(order_by="patient", lanes=8)
    lanes = {document_decision(ordered, DOCUMENT).deliveries[0].lane for _ in range(3)}
    assert len(lanes) == 1


def test_a_refused_document_is_an_error_with_its_reason():
    """If the source refused the document, then the decision is ERROR with its reason."""
    refused = InboundDocument(b"junk", "ITI-41", error="refused: XDSRepositoryMetadataError")
    decision = document_decision(plan(), refused)
    assert (decision.status, decision.error) == (st.ERROR, refused.error)
    assert decision.deliveries == ()


def test_a_channel_with_hl7_processing_cannot_take_a_document():
    """If the channel has a transform (or steps), then the document is ERROR saying that
    those read HL7 v2 and a document can only be routed."""
    decision = document_decision(plan(transform=object()), DOCUMENT)
    assert decision.status == st.ERROR
    assert "can only be routed" in decision.error and "ITI-41" in decision.error


def test_decide_recognises_a_stored_document():
    """If a stored document is decided again (a replay with --reprocess, the recovery
    scan), then decide routes it as a document instead of failing to read an MSH."""
    from engine.flow.decision import decide
    from engine.flow.plan import InboundMessage

    message = InboundMessage(7, "", raw=b"<?xml version='1.0'?><x/>", message_type="ITI-41")
    decision = decide(plan(), message)
    assert decision.status == st.TRANSFORMED
    assert [d.destination for d in decision.deliveries] == ["dmp", "archive"]
    assert decide(plan(transform=object()), message).status == st.ERROR
