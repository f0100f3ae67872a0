"""
The INS (identité nationale de santé) as the DMP's patientId, and the rule
that decides which patient id a submission may carry (NOTES.md §4):

- toward the DMP, the patientId is the INS matricule in the national
  affinity domain, ``matricule^^^&<INS OID>&ISO^NH``, and only a qualified
  INS may be used: the identity status (PID-32, RNIV) must be ``QUAL``.
  ``VALI`` (document checked, no INSi call), ``RECUP`` (INSi, no document
  check) and ``PROV`` are refused with a message that says which;
- toward any other shared record, the patientId is the local id of that
  record's affinity domain (the identity index gives it), INS or not.

test-case-name: tests.xds.dmp.test_ins
"""
from __future__ import annotations

from xds.metadata import errors as codes
from xds.metadata.errors import RegistryError
from xds.metadata.model import Submission

INS_OIDS = {
    "1.2.250.1.213.1.4.8": "INS-NIR",
    "1.2.250.1.213.1.4.9": "INS-NIA",
    "1.2.250.1.213.1.4.10": "INS-NIR de test",
    "1.2.250.1.213.1.4.11": "INS-NIR de démonstration",
}
QUALIFIED = "QUAL"
IDENTITY_STATUSES = {
    "PROV": "provisoire", "RECUP": "récupérée", "VALI": "validée", "QUAL": "qualifiée",
}
MATRICULE_LENGTH = 15


class PatientIdRefused(ValueError):
    """No patient id can be sent: the INS is not qualified, or there is no id at all."""


def ins_cx(matricule: str, oid: str) -> str:
    """The XDS patientId of an INS: ``matricule^^^&oid&ISO^NH``."""
    return f"{matricule}^^^&{oid}&ISO^NH"


def ins_parts(patient_id: str) -> tuple[str, str] | None:
    """(matricule, INS OID) when *patient_id* is an INS in CX form, else None."""
    fields = patient_id.split("^")
    if len(fields) < 4:
        return None
    authority = fields[3].split("&")
    oid = authority[1] if len(authority) > 1 else ""
    return (fields[0], oid) if oid in INS_OIDS else None


def ins_problem(patient_id: str, identity_status: str) -> str:
    """Why *patient_id* may not go to the DMP, or "" when it may."""
    parts = ins_parts(patient_id)
    if parts is None:
        return (f"patientId {patient_id!r} is not an INS (assigning authority must be one of"
                f" {', '.join(INS_OIDS)}); the DMP is indexed by the INS")
    matricule, oid = parts
    if len(matricule) != MATRICULE_LENGTH or not matricule[:13].isalnum():
        return (f"patientId {patient_id!r}: the {INS_OIDS[oid]} matricule must have"
                f" {MATRICULE_LENGTH} characters (13 + a 2-digit key)")
    if not patient_id.split("^")[4:5] == ["NH"]:
        return f"patientId {patient_id!r}: an INS in XDS metadata has identifier type code NH"
    status = identity_status.strip().upper()
    if status != QUALIFIED:
        named = IDENTITY_STATUSES.get(status)
        said = f"{status} ({named})" if named else (repr(status) if status else "unknown")
        return (f"the INS {matricule} is not qualified: identity status {said} (PID-32);"
                f" only a qualified INS (QUAL: INSi call and identity document checked) may be"
                f" used to publish to the DMP")
    return ""


def check_ins(submission: Submission, identity_status: str) -> list[RegistryError]:
    """The submission's patientIds against the qualified-INS rule, one error per object."""
    findings = []
    objects = [("SubmissionSet", entry) for entry in submission.submission_sets]
    objects += [("DocumentEntry", entry) for entry in submission.documents]
    objects += [("Folder", entry) for entry in submission.folders]
    for kind, entry in objects:
        problem = ins_problem(entry.patient_id, identity_status)
        if problem:
            findings.append(RegistryError(codes.REGISTRY_METADATA_ERROR,
                                          f"{kind} {entry.entry_uuid!r}: {problem}",
                                          entry.entry_uuid))
    return findings


def choose_patient_id(*, toward_dmp: bool, ins: str = "", identity_status: str = "",
                      local_id: str = "") -> str:
    """The patientId a submission carries, or raise :class:`PatientIdRefused`.

    *ins* is the patient's INS in CX form, *identity_status* its PID-32 status,
    *local_id* the patient's id in the destination's affinity domain (from
    the identity index). Toward the DMP only a qualified INS will do; toward
    another record its own domain's id is used.
    """
    if toward_dmp:
        if not ins:
            raise PatientIdRefused("the patient has no INS; the DMP is indexed by the INS")
        problem = ins_problem(ins, identity_status)
        if problem:
            raise PatientIdRefused(problem)
        return ins
    if not local_id:
        raise PatientIdRefused("the patient has no id in the destination's affinity domain")
    return local_id
