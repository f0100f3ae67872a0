"""The INS as the DMP patientId: only a qualified INS, with a message that says why not."""
from __future__ import annotations

import pytest

from tests.xds.builders import PATIENT, submission
from xds.dmp.ins import (
    PatientIdRefused, check_ins, choose_patient_id, ins_cx, ins_parts, ins_problem,
)
from xds.metadata.errors import REGISTRY_METADATA_ERROR

LOCAL = "IPP123^^^&1.2.250.1.999.7&ISO^PI"


def test_ins_cx_round_trips():
    """If the CX were built or read differently, the DMP would not find the patient."""
    patient_id = ins_cx("279035121518989", "1.2.250.1.213.1.4.8")
    assert patient_id == "279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert ins_parts(patient_id) == ("279035121518989", "1.2.250.1.213.1.4.8")
    assert ins_parts(LOCAL) is None


def test_qualified_ins_passes():
    """If a qualified INS were refused, nothing could be published."""
    assert ins_problem(PATIENT, "QUAL") == ""
    assert ins_problem(PATIENT, " qual ") == ""


@pytest.mark.parametrize("status, said", [
    ("VALI", "VALI (validée)"), ("RECUP", "RECUP (récupérée)"), ("PROV", "PROV (provisoire)"),
    ("", "unknown"), ("XYZ", "'XYZ'"),
])
def test_unqualified_ins_is_refused_with_its_status(status, said):
    """If the message did not say which status, the user could not know what to do."""
    problem = ins_problem(PATIENT, status)
    assert problem == (f"the INS 279035121518989 is not qualified: identity status {said}"
                       " (PID-32); only a qualified INS (QUAL: INSi call and identity document"
                       " checked) may be used to publish to the DMP")


@pytest.mark.parametrize("patient_id, message", [
    (LOCAL, "is not an INS"),
    ("27903512151^^^&1.2.250.1.213.1.4.8&ISO^NH", "must have 15 characters"),
    ("279035121518989^^^&1.2.250.1.213.1.4.8&ISO^INS", "identifier type code NH"),
])
def test_malformed_ins_is_refused(patient_id, message):
    """If a local id or a malformed INS went to the DMP, it would be refused there, less clearly."""
    assert message in ins_problem(patient_id, "QUAL")


def test_check_ins_reports_each_object():
    """If one object's patientId escaped the check, a mixed submission would slip through."""
    sub = submission(2)
    sub.documents[1].patient_id = LOCAL
    errors = check_ins(sub, "QUAL")
    assert [(e.error_code, e.location) for e in errors] == [(REGISTRY_METADATA_ERROR,
                                                             "Document02")]
    assert errors[0].code_context.startswith("DocumentEntry 'Document02': patientId")
    assert [e.location for e in check_ins(sub, "VALI")] == [
        "SubmissionSet01", "Document01", "Document02"]


def test_choose_patient_id():
    """If the rule chose the wrong id, a patient would be published under the wrong identity."""
    assert choose_patient_id(toward_dmp=True, ins=PATIENT, identity_status="QUAL",
                             local_id=LOCAL) == PATIENT
    assert choose_patient_id(toward_dmp=False, ins=PATIENT, identity_status="QUAL",
                             local_id=LOCAL) == LOCAL
    with pytest.raises(PatientIdRefused, match="VALI"):
        choose_patient_id(toward_dmp=True, ins=PATIENT, identity_status="VALI", local_id=LOCAL)
    with pytest.raises(PatientIdRefused, match="has no INS"):
        choose_patient_id(toward_dmp=True, local_id=LOCAL, identity_status="QUAL")
    with pytest.raises(PatientIdRefused, match="affinity domain"):
        choose_patient_id(toward_dmp=False, ins=PATIENT, identity_status="QUAL")
