"""CDA R2 header reading and the DocumentEntry derived from it."""
from __future__ import annotations

import pytest

from tests.standards import sample
from xds.cda.entry import document_entry_from_cda, escape, hl7_utc, xcn, xon
from xds.cda.header import CDAError, II, Organization, Person, PersonName, read_cda_header
from xds.metadata.model import Code
from xds.safexml import UnsafeXMLError

MINIMAL = b"""<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="1.2.3.4" extension="doc-1"/>
  <code code="11488-4" codeSystem="2.16.840.1.113883.6.1" displayName="Consult note"/>
  <title>Consultation</title>
  <effectiveTime value="20240101230000-0200"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="1.2.3.5"/><versionNumber value="2"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.213.1.4.8" extension="279035121518989"/>
    <id root="1.2.3.99" extension="IPP-7"/>
    <patient><name><family qualifier="BR">MARTIN</family><given>Anne</given></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19790328"/></patient>
  </patientRole></recordTarget>
  <author><time value="20240101"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="801234567897"/>
    <assignedPerson><name><given>Charles</given><family>DAVID</family></name></assignedPerson>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1750803447"/>
      <name>H&#244;pital A &amp; B</name></representedOrganization>
  </assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.71.4.2.2" extension="1750803447"/><name>HEGP</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <component><nonXMLBody><text mediaType="application/pdf" representation="B64">JVBE</text>
  </nonXMLBody></component>
</ClinicalDocument>"""


def test_header_fields():
    """If a CDA header is read, then identifiers, codes, times and people are all there."""
    header = read_cda_header(MINIMAL)
    assert header.id == II("1.2.3.4", "doc-1")
    assert header.code.code == "11488-4"
    assert (header.title, header.language, header.version) == ("Consultation", "fr-FR", "2")
    assert header.set_id == II("1.2.3.5")
    assert header.confidentiality.code == "N"
    assert header.patient.name == PersonName("MARTIN", ["Anne"])
    assert header.patient.birth_time == "19790328"
    assert header.custodian.name == "HEGP"
    assert header.authors[0].organization.name == "Hôpital A & B"
    assert header.non_xml_body_media_type == "application/pdf"


def test_derived_entry():
    """If a DocumentEntry is derived, then uniqueId is root^extension, creationTime is UTC,
    the INS is the patientId (type NH) and the local id the sourcePatientId."""
    entry = document_entry_from_cda(read_cda_header(MINIMAL), entry_uuid="Document01",
                                    class_code=Code("10", "1.2.250.1.213.1.1.4.1"))
    assert entry.unique_id == "1.2.3.4^doc-1"
    assert entry.creation_time == "20240102010000"
    assert entry.patient_id == "279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert entry.source_patient_id == "IPP-7^^^&1.2.3.99&ISO"
    assert entry.format_code == Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3")
    assert entry.authors[0].person == \
        "801234567897^DAVID^Charles^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    assert entry.authors[0].institutions == [
        "Hôpital A \\T\\ B^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750803447"]
    assert "PID-5|MARTIN^Anne^^^^^L" in entry.source_patient_info
    assert entry.mime_type == "text/xml"


def test_reconciled_patient_id_overrides():
    """If identity reconciliation chose a patientId, then it is used as given."""
    entry = document_entry_from_cda(read_cda_header(MINIMAL), entry_uuid="D",
                                    patient_id="X^^^&1.2.3&ISO")
    assert entry.patient_id == "X^^^&1.2.3&ISO"


@pytest.mark.parametrize("value, expected", [
    ("20191203133000+0100", "20191203123000"), ("20240101230000-0200", "20240102010000"),
    ("201912031330+0100", "201912031230"), ("20191203", "20191203"),
    ("20191203133000.123+0000", "20191203133000"), ("20191203133000", "20191203133000"),
    ("", ""),
])
def test_hl7_utc(value, expected):
    """If a TS has a zone, then it is moved to UTC keeping its precision; else kept."""
    assert hl7_utc(value) == expected


def test_xcn_xon_and_escape():
    """If names hold HL7 separators, then they are escaped; a device author is XCN.10 U."""
    assert escape("A&B^C|D~E\\") == "A\\T\\B\\S\\C\\F\\D\\R\\E\\E\\"
    device = Person(ids=[II("1.2.3.4")], device="Scanner v1")
    assert xcn(device) == "1.2.3.4^Scanner v1^^^^^^^^U"
    assert xon(Organization(II("1.2.3.4"), "Clinic")) == "Clinic^^^^^^^^^1.2.3.4"
    assert xon(Organization(None, "Clinic")) == "Clinic"


@pytest.mark.parametrize("data, error, fragment", [
    (b"<x/>", CDAError, "not {urn:hl7-org:v3}ClinicalDocument"),
    (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id nullFlavor="UNK"/></ClinicalDocument>',
     CDAError, "has no identifier"),
    (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/></ClinicalDocument>',
     CDAError, "no recordTarget"),
    (b'<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><c>&x;</c>', UnsafeXMLError,
     "CDA document declares a DTD"),
])
def test_bad_documents(data, error, fragment):
    """If the document is not a usable CDA, then the error says what is missing."""
    with pytest.raises(error, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        read_cda_header(data)


def test_ans_lettre_de_liaison():
    """If the ANS LDL-SES example is read, then its entry matches the ANS mapping (NOTES §5.2)."""
    header = read_cda_header(sample("cda/examples/ans/LDL-SES_2022.01.xml").read_bytes())
    entry = document_entry_from_cda(header, entry_uuid="Document01")
    assert entry.unique_id == "1.2.250.1.213.1.1.1.29.2022.1.1"
    assert entry.type_code == Code("11490-0", "2.16.840.1.113883.6.1",
                                   "Lettre de liaison à la sortie d'un établissement de soins")
    assert entry.creation_time == "20191203123000"
    assert (entry.service_start_time, entry.service_stop_time) == ("20191029101700",
                                                                   "20191203123000")
    assert entry.patient_id == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert entry.format_code.code == "urn:asip:ci-sis:ldl-ses:2017"
    assert entry.healthcare_facility_type_code.code == "SA01"
    assert entry.practice_setting_code.code == "ETABLISSEMENT"
    assert entry.authors[0].institutions == [
        "Hôpital Européen Georges Pompidou^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750803447"]
    assert entry.authors[0].specialties == [
        "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5"]
    assert entry.legal_authenticator.startswith("801234567897^AUGUIN^Léon^")
    assert header.set_id == II("1.2.250.1.213.1.1.1.29.2022.1") and header.version == "1"
