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


def test_a_document_of_a_patient_who_opposed_skips_the_shared_record():
    """If the document's patient (its submission's patientId, CX) opposed sharing, then the
    shared-record destination gets nothing, the reason on the journal line, and the other
    destination is still served; with only the shared record, the document is FILTERED."""
    from engine.flow.documents import consent_refusal
    from engine.store.consent import SHARED_RECORD, Opposition
    from tests.flow.test_consent import FixedLookup

    lookup = FixedLookup({("1.2.5", "P1"): Opposition(
        1, "1.2.5", "P1", SHARED_RECORD, 1733500000.0, "operator:ana", "asked at the desk")})
    sharing = ChannelPlan("hospital", (DestinationPlan("dmp", shared_record=True),
                                       DestinationPlan("archive")), consent_lookup=lookup)
    opposed = consent_refusal(sharing, DOCUMENT)
    assert opposed is not None and "P1^^^&1.2.5&ISO opposed to shared-record" in opposed
    assert lookup.asked == [((("1.2.5", "P1"),), SHARED_RECORD)]
    decision = document_decision(sharing, DOCUMENT, opposed)
    assert decision.status == st.TRANSFORMED
    assert [d.destination for d in decision.deliveries] == ["archive"]
    assert decision.detail.startswith("not sent to dmp: consent:")
    only = ChannelPlan("hospital", (DestinationPlan("dmp", shared_record=True),),
                       consent_lookup=lookup)
    assert document_decision(only, DOCUMENT, opposed).status == st.FILTERED
    other = InboundDocument(b"<xds/>", "ITI-41", patient="P2^^^&1.2.5&ISO")
    assert consent_refusal(sharing, other) is None


def test_a_shared_record_destination_alone_does_not_make_a_document_channel_process_hl7():
    """If a document channel's only particularity is a shared-record destination, then it
    still routes documents (consent is read from the store, not from HL7 fields)."""
    sharing = ChannelPlan("hospital", (DestinationPlan("dmp", shared_record=True),))
    assert not sharing.reads_hl7 and not sharing.routes_only
    assert document_decision(sharing, DOCUMENT).status == st.TRANSFORMED


def test_a_document_replayed_after_an_opposition_is_kept_from_the_shared_record():
    """If a document processed again (``messages replay --reprocess``, the recovery scan)
    skipped the consent check of its first intake, then an opposition recorded since would
    not stop it: its patient is read back from the stored submission and looked up."""
    from engine.flow.decision import decide
    from engine.flow.plan import InboundMessage
    from engine.store.consent import SHARED_RECORD, Opposition
    from tests.flow.test_consent import FixedLookup
    from tests.xds.builders import DOCUMENT_BYTES, submission
    from xds.transforms.payload import document_patient, submission_payload

    stored = submission_payload(submission(), {"Document01": DOCUMENT_BYTES})
    patient = submission().submission_sets[0].patient_id        # value^^^&OID&ISO
    value, oid = patient.split("^")[0], patient.split("&")[1]
    lookup = FixedLookup()
    sharing = ChannelPlan("hospital", (DestinationPlan("dmp", shared_record=True),
                                       DestinationPlan("archive")),
                          consent_lookup=lookup, document_patient=document_patient)
    message = InboundMessage(7, "", raw=stored, message_type="ITI-41")
    first = decide(sharing, message)                            # no opposition yet
    assert [d.destination for d in first.deliveries] == ["dmp", "archive"]

    lookup.oppositions[(oid, value)] = Opposition(
        1, oid, value, SHARED_RECORD, 1733500000.0, "operator:ana", "asked at the desk")
    replayed = decide(sharing, message)
    assert lookup.asked[-1] == (((oid, value),), SHARED_RECORD)
    assert replayed.status == st.TRANSFORMED
    assert [d.destination for d in replayed.deliveries] == ["archive"]
    assert replayed.detail.startswith(f"not sent to dmp: consent: patient {value}^^^&{oid}&ISO"
                                      " opposed to shared-record since 2024-12-06T")
    assert replayed.detail.endswith("(operator:ana; asked at the desk)")


def test_a_replayed_document_whose_patient_cannot_be_read_is_an_error():
    """If a stored document could not be read back, then it is ERROR saying why, rather than
    sent to the shared record unchecked."""
    from engine.flow.decision import decide
    from engine.flow.plan import InboundMessage
    from tests.flow.test_consent import FixedLookup
    from xds.transforms.payload import document_patient

    sharing = ChannelPlan("hospital", (DestinationPlan("dmp", shared_record=True),),
                          consent_lookup=FixedLookup(), document_patient=document_patient)
    decision = decide(sharing, InboundMessage(7, "", raw=b"<unknown/>", message_type="ITI-41"))
    assert decision.status == st.ERROR
    assert "PayloadError" in decision.error and "neither a CDA" in decision.error
