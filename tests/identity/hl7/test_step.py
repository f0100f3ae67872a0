"""
The ``identity:`` step on the in-memory index: feed, resolve, rewrite, queries, and refusals.
"""
from __future__ import annotations

import pytest

from identity.hl7.response import Envelope
from identity.hl7.rewrite import TargetDomains
from identity.hl7.step import Fired, StepSettings, run_step, settled
from mappings.message import HL7Message
from mllp.codes import REQUIRED_FIELD_MISSING, UNKNOWN_KEY, UNSUPPORTED_EVENT
from tests.identity.fakes import MemoryIdentityService
from tests.identity.hl7.conformance import DOMAINS, GHT, validation_problems
from tests.identity.hl7.messages import adt, ght, ipp, pid_segment

ENVELOPE = Envelope("R1", "20260320100001")
FEED = StepSettings(DOMAINS, feed=True)
NIR = "248092A012345"  # not a valid key: the tests below never need it checked


def run(service, message, settings=FEED, peer="mllp://127.0.0.1:1"):
    return settled(run_step(service, message, settings, ENVELOPE, peer))


def query(structure: str, qpd: str, tail: str = "RCP|I\r") -> HL7Message:
    return HL7Message.parse(f"MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||{structure}|Q1|P|2.5\r"
                            f"QPD|{qpd}\r{tail}")


def test_a01_creates_and_a08_updates_the_same_person():
    """If A01 then A08 name the same IPP, then one person, created then updated, audited."""
    index = MemoryIdentityService()
    first = run(index, adt("A01", pid_segment(ipp("100"))))
    second = run(index, adt("A08", pid_segment(ipp("100")), control_id="C2"))
    assert "created" in first.detail and "updated" in second.detail
    assert first.person_id == second.person_id == "P1"
    assert [a.transaction for a in first.audits] == ["ITI-8"]
    assert first.audits[0].outcome == "AA" and first.audits[0].persons == ("P1",)


def test_merge_then_unmerge_is_refused_for_an_unknown_patient():
    """If A40 absorbs a known IPP, then one person remains; a merge of nobody is 204 at MRG-1."""
    index = MemoryIdentityService()
    run(index, adt("A01", pid_segment(ipp("1"))))
    run(index, adt("A01", pid_segment(ipp("2"), name="DURAND^PAUL^^^^^L", date="19700101",
                                      sex="M")))
    merged = run(index, adt("A40", pid_segment(ipp("1")), "MRG|" + ipp("2")))
    assert not merged.refused and "merged into person P1" in merged.detail
    assert len(index.persons) == 1
    unknown = run(index, adt("A40", pid_segment(ipp("1")), "MRG|" + ipp("99")))
    assert unknown.refused and unknown.errors[0].code == UNKNOWN_KEY
    assert unknown.errors[0].location == "MRG^1^1" and unknown.audits[0].outcome == "AE"


def test_a_pid_without_identifier_is_refused_where_it_is():
    """If PID-3 is empty, then the error is 101 at PID-3 and the index is untouched."""
    index = MemoryIdentityService()
    result = run(index, adt("A01", pid_segment("")))
    assert result.refused and result.errors[0].code == REQUIRED_FIELD_MISSING
    assert result.errors[0].location.startswith("PID^1^3") and not index.persons


def test_an_unknown_domain_is_refused():
    """If PID-3 names a domain the territory does not know, then 204 and nothing indexed."""
    index = MemoryIdentityService()
    result = run(index, adt("A01", pid_segment("5^^^X&1.2.3.4.5&ISO^PI")))
    assert result.refused and result.errors[0].code == UNKNOWN_KEY and not index.persons


def test_resolve_registers_the_patient_of_any_message():
    """If an ORU comes with resolve, then its patient is registered (not fed: no ADT)."""
    index = MemoryIdentityService()
    oru = HL7Message.parse("MSH|^~\\&|LAB|CHU|X|Y|20260320||ORU^R01^ORU_R01|O1|P|2.5\r"
                           + pid_segment(ipp("7")) + "\r")
    result = run(index, oru, StepSettings(DOMAINS))
    assert result.person_id == "P1" and "created" in result.detail and not result.audits


def test_a_message_without_pid_cannot_be_resolved():
    index = MemoryIdentityService()
    message = HL7Message.parse("MSH|^~\\&|A|B|C|D|20260320||MFN^M02|M1|P|2.5\rMFI|PRA\r")
    result = run(index, message, StepSettings(DOMAINS))
    assert result.refused and result.errors[0].location == "PID"


def test_rewrite_puts_the_target_domain_in_pid3():
    """If the person holds a GHT number, then PID-3 carries it instead of the CHU number."""
    index = MemoryIdentityService()
    run(index, adt("A01", pid_segment(ipp("1") + "~" + ght("G1"))))
    message = adt("A08", pid_segment(ipp("1")))
    settings = StepSettings(DOMAINS, feed=True, target=TargetDomains((GHT,), ins_first=False))
    result = run(index, message, settings)
    assert message.segment("PID").field(3).startswith("G1^^^GHT-ARVERNE")
    assert "PID-3 rewritten: G1@GHT-ARVERNE" in result.detail


def test_rewrite_without_a_target_identifier_is_an_error():
    """If the person has nothing in the target domain and no qualified INS, then 204 at PID-3."""
    index = MemoryIdentityService()
    message = adt("A01", pid_segment(ipp("1")))
    settings = StepSettings(DOMAINS, feed=True, target=TargetDomains((GHT,)))
    result = run(index, message, settings)
    assert result.refused and result.errors[0].location == "PID^1^3"
    assert "no qualified INS" in result.errors[0].text


def test_pix_query_is_answered_and_audited():
    index = MemoryIdentityService()
    run(index, adt("A01", pid_segment(ipp("1") + "~" + ght("G1"))))
    settings = StepSettings(DOMAINS, queries=True)
    result = run(index, query("QBP^Q23^QBP_Q21", "IHE PIX Query|T1|1^^^&1.2.250.1.999.1.1&ISO"),
                 settings)
    assert not result.refused and result.answer is not None
    assert validation_problems(result.answer, "RSP_K23") == []
    assert [a.transaction for a in result.audits] == ["ITI-9"]


def test_pix_query_for_an_unknown_domain_is_an_error_with_its_answer():
    index = MemoryIdentityService()
    settings = StepSettings(DOMAINS, queries=True)
    result = run(index, query("QBP^Q23^QBP_Q21", "IHE PIX Query|T1|1^^^&9.9.9&ISO"), settings)
    assert result.refused and result.errors[0].code == UNKNOWN_KEY
    assert result.errors[0].location.startswith("QPD^1^3")
    assert "MSA|AE|Q1" in result.answer and result.audits[0].outcome == "AE"


def test_pdq_query_pages_and_cancel():
    """If 3 DUPONT and a limit of 2, then a continuation pointer; QCN^J01 is acknowledged."""
    index = MemoryIdentityService()
    for number in "123":
        run(index, adt("A01", pid_segment(ipp(number), name=f"DUPONT^JEAN{number}^^^^^L",
                                          date=f"198001{number}0", sex="M")))
    settings = StepSettings(DOMAINS, queries=True, query_limit=2)
    first = run(index, query("QBP^Q22^QBP_Q21", "IHE PDQ Query|T2|@PID.5.1^DUPONT"), settings)
    assert validation_problems(first.answer, "RSP_K21") == []
    assert first.answer.count("\rPID|") == 2 and "\rDSC|2." in first.answer
    cancel = run(index, HL7Message.parse(
        "MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QCN^J01^QCN_J01|Q3|P|2.5\rQID|T2|IHE PDQ Query\r"),
        settings)
    assert cancel.answer.startswith("MSH|") and "MSA|AA|Q3" in cancel.answer


def test_an_unsupported_query_is_refused():
    settings = StepSettings(DOMAINS, queries=True)
    result = run(MemoryIdentityService(), query("QBP^Q21^QBP_Q21", "X|T1|1"), settings)
    assert result.refused and result.errors[0].code == UNSUPPORTED_EVENT


def test_fired_passes_the_cause_to_changes_only():
    """If a synchronous index is wrapped, then changes get the cause and reads do not."""
    calls = []

    class Sync:
        def register(self, *args, cause=None):
            calls.append(("register", cause))
            raise KeyError("refused")

        def person(self, identifier):
            calls.append(("person", None))
            return None

    service = Fired(Sync(), cause="message:4")
    assert settled(service.person(None)) is None
    with pytest.raises(KeyError):
        settled(service.register((), None))
    assert calls == [("person", None), ("register", "message:4")]


def test_contradictory_traits_are_kept_for_review_with_a_warning():
    """If PID-32 says QUAL without an INS, then the patient is registered for review and the
    step warns (severity W) with the reason, not an error."""
    index = MemoryIdentityService()
    result = run(index, adt("A01", pid_segment(ipp("1"), status="QUAL")))
    assert not result.refused and result.person_id == "P1"
    assert [w.severity for w in result.warnings] == ["W"] and index.reviews
