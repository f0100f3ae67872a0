"""MDM^T02 → XDS.b submission: the document out of OBX-5, its metadata from TXA/PID/MSH or
from its CDA header, valid for the registry's rules and the ebRIM / XDS.b schemas."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from mappings.message import HL7Message
from mappings.tables import parse_table_bytes
from mappings.transforms.mdm import MdmError, read_mdm
from mappings.transforms.oru_cda import oru_to_cda
from tests.xds.builders import counter_ids
from tests.standards import sample
from tests.xds.standards import assert_valid
from xds.cda.entry import document_entry_from_cda
from xds.cda.header import read_cda_header
from xds.metadata.model import Code
from xds.metadata.validation import validate
from xds.soap.documents import provide_and_register_request
from xds.transforms.mdm import SubmissionOptions, submission_from_mdm

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "mdm"
OPTIONS = SubmissionOptions(
    source_id="1.2.250.1.999.7",
    class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
    healthcare_facility_type_code=Code("SA01", "1.2.250.1.71.4.2.4", "Public"),
    practice_setting_code=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement"))
INS = "1.2.250.1.213.1.4.8"


def submit(text: str, options: SubmissionOptions = OPTIONS):
    """The submission of ``text``, checked by validation and both schemas."""
    result = submission_from_mdm(read_mdm(HL7Message.parse(text)), options, new_id=counter_ids())
    assert validate(result.submission) == []
    request, parts = provide_and_register_request(result.submission, result.documents,
                                                  optimise=False, new_id=counter_ids("urn:uuid:"
                                                  "10000000-0000-4000-8000-"))
    assert_valid("xdsb", request)
    assert_valid("lcm", request[0])
    return result


def project(name: str) -> str:
    return (SAMPLES / name).read_bytes().decode("utf-8")


def test_pdf_document_comes_out_whole_with_txa_metadata():
    """If OBX-5 carries a Base64 PDF, then the bytes, hash and TXA metadata are kept."""
    text = project("t02-document.hl7")
    result = submit(text)
    entry = result.submission.documents[0]
    content = result.documents[entry.entry_uuid]
    assert content.startswith(b"%PDF-1.4")
    assert (entry.hash, entry.size) == (hashlib.sha1(content).hexdigest(), str(len(content)))
    assert entry.mime_type == "application/pdf"
    assert entry.unique_id == "1.2.250.1.999.1.3^DOC2024000451.1"
    assert (entry.type_code.code, entry.type_code.scheme) == ("11490-0", "2.16.840.1.113883.6.1")
    assert entry.format_code.code == "urn:ihe:iti:xds:2017:mimeTypeSufficient"
    assert entry.creation_time == "20240315153000"
    assert [a.person for a in entry.authors] == [
        "810001234567^MOREAU^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]


def test_unqualified_ins_is_not_the_patient_id():
    """If PID-32 is VALI, then the patientId is the local IPP, not the INS."""
    entry = submit(project("t02-document.hl7")).submission.documents[0]
    assert entry.patient_id == "00451203^^^&1.2.250.1.999.1.1&ISO"
    assert INS not in " ".join(entry.source_patient_info)


def test_qualified_ins_is_the_patient_id():
    """If PID-32 is QUAL, then the patientId is the INS with type NH."""
    result = submit(project("t02-dictated.hl7"))
    entry, submission_set = result.submission.documents[0], result.submission.submission_set
    assert entry.patient_id == f"248096343012736^^^&{INS}&ISO^NH"
    assert submission_set.patient_id == entry.patient_id
    assert entry.mime_type == "text/plain"
    assert result.documents[entry.entry_uuid].decode("utf-8").startswith("Lettre de liaison")


def test_cda_document_metadata_comes_from_its_header():
    """If the document is a CDA, then the title and authors are the CDA header's, not TXA's."""
    result = submit(project("t02-cda-consultation.hl7"))
    entry = result.submission.documents[0]
    document = result.documents[entry.entry_uuid]
    assert entry.mime_type == "text/xml" and b"ClinicalDocument" in document
    assert entry.title.startswith("Compte rendu de consultation d'h")   # TXA-2.2 is shorter
    assert entry.format_code is not None and entry.creation_time


def test_escaped_text_document_is_unescaped():
    """If OBX-5 holds plain (encoding A) text, then the document is that text, unescaped."""
    text = project("t02-dictated.hl7")
    encoded = text.split("^TEXT^PLAIN^Base64^")[1].split("|")[0]
    plain = text.replace(f"^TEXT^PLAIN^Base64^{encoded}", "^TEXT^PLAIN^A^R\\T\\D done")
    result = submit(plain)
    assert list(result.documents.values()) == [b"R&D done"]


@pytest.mark.parametrize("relative", [
    "hl7v2/ans/mdm-cr-radio-v2.0/message_MDM_CR_Radio_INIT_N1.er7",
    "hl7v2/ans/mdm-lps-mss-v1.0/message_MDM__LPS_MSS_CR_Radio_INIT_N1.er7"])
def test_ans_samples_give_valid_submissions(relative):
    """If an ANS MDM^T02 (INS only VALIdée) is submitted with the patientId reconciliation
    chose, then the metadata pass validation and the schemas; TXA-12 ``<OID>.<local>`` is
    split into root and extension."""
    text = sample(relative).read_bytes().decode("utf-8", errors="replace")
    options = SubmissionOptions(**{**OPTIONS.__dict__, "patient_id": "P9^^^&1.2.250.1.999.8&ISO"})
    entry = submit(text, options).submission.documents[0]
    assert entry.type_code.code == "18748-4"
    assert entry.unique_id == "1.2.250.1.71.4.2.2.120456789^A71024000081"
    assert entry.source_patient_id == f"274075176079430^^^&{INS}&ISO"


def test_unqualified_ins_alone_gives_no_patient_id():
    """If the only identifier is an INS that is not qualified, then validation says the
    patientId is missing rather than publishing under that INS."""
    text = sample("hl7v2/ans/mdm-cr-radio-v2.0/message_MDM_CR_Radio_INIT_N1.er7").read_bytes()
    result = submission_from_mdm(read_mdm(HL7Message.parse(text.decode("utf-8", "replace"))),
                                 OPTIONS, new_id=counter_ids())
    assert any("patientId is required" in e.code_context for e in validate(result.submission))


@pytest.mark.parametrize("edit,words", [
    (lambda t: t.replace("|ED|", "|ST|"), "no OBX with OBX-2 ED"),
    (lambda t: t.replace("^Base64^JVBER", "^Base64^!!JVBER"), "not valid Base64"),
    (lambda t: t.replace("^Base64^", "^Hex^"), "encoding 'Hex'"),
    (lambda t: "\r".join(s for s in t.split("\r") if not s.startswith("TXA")), "no TXA")])
def test_unusable_document_is_refused_with_a_clear_error(edit, words):
    """If the document cannot be taken out, then the error names what and where."""
    with pytest.raises(MdmError, match=words):
        read_mdm(HL7Message.parse(edit(project("t02-document.hl7"))))


def test_submission_options_override_the_patient_id():
    """If identity reconciliation gave a patientId, then both entries use it."""
    chosen = "P1^^^&1.2.250.1.999.8&ISO"
    options = SubmissionOptions(**{**OPTIONS.__dict__, "patient_id": chosen})
    result = submit(project("t02-document.hl7"), options)
    assert result.submission.documents[0].patient_id == chosen
    assert result.submission.submission_set.patient_id == chosen


def test_base64_is_what_obx5_said():
    """If the PDF sample is read, then its bytes are OBX-5.5 decoded."""
    text = project("t02-document.hl7")
    data = text.split("^AP^PDF^Base64^")[1].split("|")[0]
    assert read_mdm(HL7Message.parse(text)).content == base64.b64decode(data)


def test_generated_lab_report_reads_back_as_an_xd_lab_entry():
    """If the ORU→CDA report is read by the CDA header reader, then the DocumentEntry has the
    lab report's type, the XD-LAB format, the qualified INS as patientId, and it validates."""
    root = SAMPLES.parent
    table = parse_table_bytes((root / "tables" / "lab-loinc.csv").read_bytes(), "lab-loinc.csv")
    text = (root / "oru" / "r01-haematology.hl7").read_bytes().decode("utf-8")
    entry = document_entry_from_cda(read_cda_header(oru_to_cda(HL7Message.parse(text), table)),
                                    entry_uuid="Document01", class_code=OPTIONS.class_code)
    assert (entry.type_code.code, entry.format_code.code) == ("11502-2", "urn:ihe:lab:xd-lab:2008")
    assert entry.patient_id == f"152116938311716^^^&{INS}&ISO^NH"
    assert entry.creation_time == "20240312110200"
