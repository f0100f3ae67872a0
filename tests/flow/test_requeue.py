"""Tests for engine.flow.requeue: what a re-queue of parked deliveries leaves in ERROR because
the patient opposed sharing since the message came in (HL7 v2 messages and documents)."""
from __future__ import annotations

from engine.flow.consent import ConsentPlan
from engine.flow.plan import ChannelPlan, DestinationPlan
from engine.flow.requeue import withheld_on_requeue
from engine.store.consent import SHARED_RECORD, Opposition
from mappings.pathsyntax import parse_path
from tests.flow.test_consent import FixedLookup

OID = "1.2.250.1.999.1.1"


def oru(opposition: str = "") -> bytes:
    return ("MSH|^~\\&|LAB|CHU|DPI|GHT|20260320||ORU^R01^ORU_R01|L1|P|2.5\r"
            f"PID|1||4711^^^CHU&{OID}&ISO^PI||DURAND^PAUL||19700101|M\r"
            f"ZFD|{opposition}\r"
            "OBR|1\rOBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L\r").encode()


def sharing(lookup, consent=None) -> ChannelPlan:
    return ChannelPlan("lab", (DestinationPlan("dmp", shared_record=True),
                               DestinationPlan("archive")),
                       consent=consent, consent_lookup=lookup)


def opposed(lookup: FixedLookup) -> None:
    lookup.oppositions[(OID, "4711")] = Opposition(
        1, OID, "4711", SHARED_RECORD, 1733500000.0, "operator:ana", "asked at the desk")


def test_an_hl7_message_of_a_patient_who_opposed_since_is_withheld_from_the_shared_record():
    """If a re-queue of an HL7 message skipped the consent check (it was checked only for
    documents), then an ORU parked before the opposition would reach the shared record; its
    shared-record destination is withheld, with the store's reason, and no other."""
    lookup = FixedLookup()
    plan = sharing(lookup)
    assert withheld_on_requeue(plan, oru()) == {}
    opposed(lookup)
    withheld = withheld_on_requeue(plan, oru())
    assert list(withheld) == ["dmp"]
    assert withheld["dmp"].startswith(f"consent: patient 4711^^^&{OID}&ISO opposed to "
                                      "shared-record since 2024-12-06T")
    assert lookup.asked[-1] == (((OID, "4711"),), SHARED_RECORD)


def test_the_message_own_withdrawal_lets_it_go_as_at_intake():
    """If the message itself records that the patient no longer opposes (PAM-FR INO), then,
    as at its first intake, its word comes before the store's and nothing is withheld."""
    lookup = FixedLookup()
    opposed(lookup)
    plan = sharing(lookup, ConsentPlan(opposition=parse_path("ZFD-1")))
    assert withheld_on_requeue(plan, oru("INO")) == {}
    assert "this message records the patient's opposition" in \
        withheld_on_requeue(plan, oru("IO"))["dmp"]


def test_a_channel_that_shares_nothing_looks_nothing_up():
    """If the channel has no shared-record destination, then nothing is read from the store."""
    lookup = FixedLookup()
    opposed(lookup)
    plan = ChannelPlan("lab", (DestinationPlan("archive"),), consent_lookup=lookup)
    assert withheld_on_requeue(plan, oru()) == {} and lookup.asked == []


def test_an_unreadable_stored_message_withholds_nothing():
    """If the stored bytes cannot be read again (no MSH), then the re-queue is not blocked
    by a check that cannot be made: nothing withheld, nothing looked up."""
    lookup = FixedLookup()
    opposed(lookup)
    assert withheld_on_requeue(sharing(lookup), b"not hl7 at all") == {}
    assert lookup.asked == []
