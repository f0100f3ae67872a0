"""A complete, valid submission for tests to start from and spoil one attribute at a time."""
from __future__ import annotations

import hashlib
import itertools

from xds.metadata.model import (
    Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet,
)

PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
DOCUMENT_BYTES = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>"


def counter_ids(prefix: str = "urn:uuid:00000000-0000-4000-8000-"):
    """A new_id factory giving stable urn:uuid ids."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers):012d}"


def author() -> Author:
    return Author(
        person="801234567897^DAVID^Charles^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
        institutions=["Hôpital Européen Georges Pompidou^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST"
                      "^^^1750803447"],
        roles=["Médecin"], specialties=["G15_10/SM27^Médecine interne^1.2.250.1.213.1.1.4.5"])


def document_entry(entry_uuid: str = "Document01", unique_id: str = "1.2.250.1.999.1.1",
                   data: bytes = DOCUMENT_BYTES) -> DocumentEntry:
    return DocumentEntry(
        entry_uuid=entry_uuid, unique_id=unique_id, patient_id=PATIENT, mime_type="text/xml",
        title="Lettre de liaison",
        class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        type_code=Code("11490-0", "2.16.840.1.113883.6.1", "Lettre de liaison"),
        format_code=Code("urn:asip:ci-sis:ldl-ses:2017", "1.2.250.1.213.1.1.4.2.282"),
        healthcare_facility_type_code=Code("SA01", "1.2.250.1.71.4.2.4", "Public"),
        practice_setting_code=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25", "Normal")],
        event_codes=[Code("IMP", "2.16.840.1.113883.5.4", "Hospitalisation")],
        authors=[author()], creation_time="20191203123000",
        service_start_time="20191029101700", service_stop_time="20191203123000",
        language_code="fr-FR", source_patient_id="1234567890121^^^&1.2.3.4.567.8.9.10&ISO",
        source_patient_info=["PID-5|PAT-TROIS^DOMINIQUE^^^^^L", "PID-7|19790328", "PID-8|F"],
        legal_authenticator="801234567897^AUGUIN^Léon^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
        hash=hashlib.sha1(data).hexdigest(), size=str(len(data)),
        extra_slots={"urn:example:custom": ["kept"]},
    )


def submission(documents: int = 1, folder: bool = False) -> Submission:
    """A SubmissionSet with *documents* entries (and a Folder holding them), all valid."""
    result = Submission(submission_sets=[SubmissionSet(
        entry_uuid="SubmissionSet01", unique_id="1.2.250.1.999.2.1", source_id="1.2.250.1.999",
        patient_id=PATIENT, submission_time="20191203130000", title="Envoi",
        content_type_code=Code("04", "1.2.250.1.213.2.2", "Hospitalisation"),
        authors=[author()])])
    for number in range(1, documents + 1):
        entry_uuid = f"Document{number:02d}"
        result.documents.append(document_entry(entry_uuid, f"1.2.250.1.999.1.{number}"))
        result.associations.append(Association(
            f"as{number:02d}", source="SubmissionSet01", target=entry_uuid,
            extra_slots={"SubmissionSetStatus": ["Original"]}))
    if folder:
        result.folders.append(Folder("Folder01", unique_id="1.2.250.1.999.3.1", patient_id=PATIENT,
                                     title="Séjour", codes=[Code("X", "1.2.3", "x")]))
        result.associations.append(Association("asF", source="SubmissionSet01",
                                               target="Folder01"))
        result.associations.append(Association("asFD", source="Folder01", target="Document01"))
        result.associations.append(Association("asSFD", source="SubmissionSet01",
                                               target="asFD"))
    return result
