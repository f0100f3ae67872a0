"""The built-in ORU^R01 → CDA R2 laboratory report, checked against the CDA schema."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mappings.message import HL7Message
from mappings.tables import CodeTable, Translation, parse_table_bytes
from mappings.transforms.oru_cda import ReportOptions, TransformError, oru_to_cda
from tests.standards import sample
from tests.xds.standards import assert_valid

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NS = {"v3": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
LOINC = "2.16.840.1.113883.6.1"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def lab_table() -> CodeTable:
    return parse_table_bytes((SAMPLES / "tables" / "lab-loinc.csv").read_bytes(),
                             "lab-loinc.csv")


def report(text: str, table: CodeTable | None = None, **options) -> etree._Element:
    """The generated document, after checking it against the CDA schema."""
    data = oru_to_cda(HL7Message.parse(text), table, ReportOptions(**options))
    document = etree.fromstring(data)
    assert_valid("cda", document)
    return document


HEAD = ("MSH|^~\\&|SIL|LABO^1.2.250.1.999.9^ISO|DEST|FAC|20240312101522||ORU^R01^ORU_R01|"
        "M1|P|2.5\r")
PID = ("PID|1||IPP1^^^CHU&1.2.250.1.999.1.1&ISO^PI~285076311304523^^^INS-NIR&"
       "1.2.250.1.213.1.4.8&ISO^INS||DOE^Jane||19850714|F||||||||||||||||||||||||QUAL\r")
OBR1 = "OBR|1|P1|F1|BIOCHIMIE^Bilan^L|||20240312073000\r"
OBR2 = "OBR|2|P2|F2|NFS^Numération^L|||20240312074000\r"


def obx(number: int, kind: str, code: str, value: str, unit: str = "", ranges: str = "",
        flag: str = "") -> str:
    return f"OBX|{number}|{kind}|{code}||{value}|{unit}|{ranges}|{flag}|||F|||20240312080000\r"


def values(document: etree._Element) -> list[etree._Element]:
    return document.findall(".//v3:observation/v3:value", NS)


@pytest.mark.parametrize("name", ["r01-biochemistry.hl7", "r01-haematology.hl7"])
def test_project_samples_become_valid_reports(name):
    """If a sample lab result is transformed, then every OBX is a coded, valued observation."""
    text = (SAMPLES / "oru" / name).read_text(encoding="utf-8")
    document = report(text, lab_table())
    message = HL7Message.parse(text)
    observations = document.findall(".//v3:observation", NS)
    assert len(observations) == len(message.segments("OBX"))
    codes = [o.find("v3:code", NS) for o in observations]
    assert all(c.get("codeSystem") == LOINC for c in codes)
    assert [c.find("v3:translation", NS).get("code") for c in codes] == [
        s.get(3, 1, 1) for s in message.segments("OBX")]
    assert document.find("v3:code", NS).get("code") == "11502-2"
    assert document.find("v3:languageCode", NS).get("code") == "fr-FR"


@pytest.mark.parametrize("relative", [
    "hl7v2/ans/oru-cr-bio-v2.1/message_ORU_CR_Bio_INIT_N1_N3.hl7",
    "hl7v2/ans/oru-cr-bio-v2.1/message_ORU_CR_Bio_RPLC_N1_N3.er7",
    "hl7v2/ans/oru-cr-bio-segur-base64/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7",
    "hl7v2/ipf/oru/oru-r01-25.hl7"])
def test_official_samples_become_valid_reports(relative):
    """If an ANS or IPF ORU^R01 is transformed, then the report is valid CDA with a section
    per order."""
    text = sample(relative).read_bytes().decode("utf-8", errors="replace")
    message = HL7Message.parse(text)
    document = report(text)
    sections = document.findall(".//v3:section", NS)
    assert len(sections) == len(message.segments("OBR"))


def test_two_orders_give_two_sections_with_their_own_results():
    """If an ORU holds two orders, then each section has only its own order's results."""
    text = (HEAD + PID + OBR1 + obx(1, "NM", "GLY^Glycémie^L", "6.8", "mmol/L", "4.1-5.9", "H")
            + OBR2 + obx(1, "NM", "HB^Hémoglobine^L", "10.9", "g/dL") +
            obx(2, "NM", "PLQ^Plaquettes^L", "245", "10*9/L"))
    document = report(text, lab_table())
    sections = document.findall(".//v3:section", NS)
    assert [s.find("v3:title", NS).text for s in sections] == ["Bilan", "Numération"]
    first, second = ([o.find("v3:code/v3:translation", NS).get("code")
                      for o in s.findall(".//v3:observation", NS)] for s in sections)
    assert (first, second) == (["GLY"], ["HB", "PLQ"])
    assert sections[1].find("v3:code", NS).get("code") == "58410-2"
    rows = sections[1].findall("v3:text/v3:table/v3:tbody/v3:tr", NS)
    assert [r.get("ID") for r in rows] == ["r2-1", "r2-2"]


def test_value_types_follow_obx2():
    """If OBX-2 is NM, ST, CE or SN, then the value is PQ, ST, CD or an interval."""
    text = (HEAD + PID + OBR1 + obx(1, "NM", "GLY^Glycémie^L", "6.8", "mmol/L", "4.1-5.9", "H")
            + obx(2, "ST", "ASP^Aspect^L", "Trouble") +
            obx(3, "CE", "GRP^Groupe^L", "A+^Groupe A positif^L") +
            obx(4, "SN", "CRP^CRP^L", "<^5", "mg/L", "<5") +
            obx(5, "NM", "K^Potassium^L", "hémolysé", "mmol/L"))
    found = values(report(text, lab_table()))
    assert [v.get(XSI_TYPE) for v in found] == ["PQ", "ST", "CD", "IVL_PQ", "ST"]
    assert (found[0].get("value"), found[0].get("unit")) == ("6.8", "mmol/L")
    assert found[1].text == "Trouble"
    assert (found[2].get("code"), found[2].get("displayName")) == ("A+", "Groupe A positif")
    high = found[3].find("v3:high", NS)
    assert (high.get("value"), high.get("inclusive"), high.get("unit")) == ("5", "false", "mg/L")
    assert found[4].text == "hémolysé"


def test_range_interpretation_time_and_status_are_kept():
    """If OBX-7, 8, 11 and 14 are given, then referenceRange, interpretation, status and time
    carry them."""
    text = HEAD + PID + OBR1 + obx(1, "NM", "GLY^Glycémie^L", "6.8", "mmol/L", "4.1-5.9", "H")
    observation = report(text, lab_table()).find(".//v3:observation", NS)
    assert observation.find("v3:interpretationCode", NS).get("code") == "H"
    assert observation.find("v3:statusCode", NS).get("code") == "completed"
    assert observation.find("v3:effectiveTime", NS).get("value") == "20240312080000"
    low = observation.find("v3:referenceRange/v3:observationRange/v3:value/v3:low", NS)
    assert (low.get("value"), low.get("unit")) == ("4.1", "mmol/L")


def test_unknown_local_code_is_kept_as_the_code():
    """If the table does not know an OBX-3 code, then the local code stays, with no LOINC."""
    text = HEAD + PID + OBR1 + obx(1, "NM", "ZZZ^Analyse maison^L", "1.2", "g/L")
    code = report(text, lab_table()).find(".//v3:observation/v3:code", NS)
    assert (code.get("code"), code.get("displayName"), code.get("codeSystemName"),
            code.get("codeSystem")) == ("ZZZ", "Analyse maison", "L", None)


def test_sender_loinc_used_when_the_table_has_none():
    """If OBX-3 already carries a LN triplet and no table is given, then that LOINC is used."""
    text = HEAD + PID + OBR1 + obx(1, "NM", "HB^Hémoglobine^L^718-7^Hemoglobin^LN", "10", "g/dL")
    code = report(text).find(".//v3:observation/v3:code", NS)
    assert (code.get("code"), code.get("codeSystem")) == ("718-7", LOINC)
    assert code.find("v3:translation", NS).get("code") == "HB"


def test_qualified_ins_comes_first():
    """If PID-32 is QUAL, then the INS is the patient's first id, before the IPP."""
    ids = report(HEAD + PID + OBR1).findall(".//v3:patientRole/v3:id", NS)
    assert [i.get("root") for i in ids] == ["1.2.250.1.213.1.4.8", "1.2.250.1.999.1.1"]


def test_birth_and_used_names_are_qualified():
    """If PID-5 holds a birth name (L) and a used name (D), then family is BR and CL."""
    text = HEAD + PID.replace("DOE^Jane", "DOE^Jane^^^^^L~SMITH^Jane^^^^^D") + OBR1
    families = report(text).findall(".//v3:patient/v3:name/v3:family", NS)
    assert [(f.text, f.get("qualifier")) for f in families] == [("DOE", "BR"), ("SMITH", "CL")]


def test_unqualified_ins_is_not_shared():
    """If PID-32 is not QUAL, then the INS is left out (only a qualified INS may be used)."""
    ids = report(HEAD + PID.replace("QUAL", "VALI") + OBR1).findall(".//v3:patientRole/v3:id", NS)
    assert [i.get("extension") for i in ids] == ["IPP1"]


def test_missing_pid3_gives_an_unknown_id():
    """If PID-3 is empty, then the document is still valid, the id is nullFlavor UNK."""
    ids = report(HEAD + "PID|1||||DOE^Jane||19850714|F\r" + OBR1).findall(
        ".//v3:patientRole/v3:id", NS)
    assert [i.get("nullFlavor") for i in ids] == ["UNK"]


def test_author_falls_back_to_the_sending_facility():
    """If neither OBR-16 nor ORC-12 names a person, then the author is the sending lab."""
    author = report(HEAD + PID + OBR1).find("v3:author/v3:assignedAuthor", NS)
    organization = author.find("v3:representedOrganization", NS)
    assert organization.find("v3:id", NS).get("root") == "1.2.250.1.999.9"
    assert organization.find("v3:name", NS).text == "LABO"


def test_document_id_is_stable_and_options_override_it():
    """If the same message is transformed twice, then the id is the same; an option root wins."""
    text = HEAD + PID + OBR1
    first, again = report(text), report(text)
    assert first.find("v3:id", NS).get("root") == again.find("v3:id", NS).get("root")
    chosen = report(text, document_root="1.2.250.1.999.5", custodian_oid="1.2.250.1.999.6",
                    custodian_name="Labo", confidentiality="R")
    assert (chosen.find("v3:id", NS).get("root"), chosen.find("v3:id", NS).get("extension")) \
        == ("1.2.250.1.999.5", "M1")
    assert chosen.find("v3:confidentialityCode", NS).get("code") == "R"


@pytest.mark.parametrize("text,words", [
    (HEAD.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01") + PID, r"not ORU\^R01"),
    (HEAD + PID, "no ORDER_OBSERVATION")])
def test_not_a_result_message_is_refused(text, words):
    """If the message is not an ORU^R01 with an order, then the error says so."""
    with pytest.raises(TransformError, match=words):
        oru_to_cda(HL7Message.parse(text), CodeTable("t", {"A": Translation("1")}))


def test_result_notes_are_kept_in_text_and_entry():
    """If an NTE follows an OBX, then the note is in the narrative and in that observation."""
    text = (HEAD + PID + OBR1 + "NTE|1|L|Demande urgente\r" +
            obx(1, "NM", "K^Potassium^L", "5.4", "mmol/L") + "NTE|1|L|Hémolyse légère\r" +
            obx(2, "NM", "NA^Sodium^L", "138", "mmol/L"))
    section = report(text, lab_table()).find(".//v3:section", NS)
    paragraphs = [p.text for p in section.findall("v3:text/v3:paragraph", NS)]
    assert paragraphs == ["Potassium : Hémolyse légère", "Demande urgente"]
    first, second = section.findall(".//v3:act/v3:entryRelationship/v3:observation", NS)
    assert first.find("v3:entryRelationship/v3:act/v3:text", NS).text == "Hémolyse légère"
    assert second.find("v3:entryRelationship", NS) is None


def test_order_without_results_is_a_valid_section():
    """If an order has no OBX yet, then its section says so and the document stays valid."""
    section = report(HEAD + PID + OBR1).find(".//v3:section", NS)
    assert section.find("v3:text/v3:paragraph", NS).text == "Aucun résultat transmis."
    assert section.find("v3:entry", NS) is None


def test_the_validating_biologist_is_the_legal_authenticator_and_obr7_the_service_time():
    """If the DMP's legalAuthenticator and serviceStartTime were missing, prepare_for_dmp
    would refuse every report: the first OBX-16 and OBR-7 give them, and the header reader
    finds them."""
    from xds.cda.header import read_cda_header

    text = (SAMPLES / "oru" / "r01-biochemistry.hl7").read_text(encoding="utf-8")
    document = report(text, lab_table())
    legal = document.find("v3:legalAuthenticator", NS)
    assert legal.find("v3:time", NS).get("value") == "20240312101500"
    assert legal.find("v3:assignedEntity/v3:id", NS).get("extension") == "810003692581"
    assert legal.find("v3:assignedEntity/v3:assignedPerson/v3:name/v3:family", NS).text == "FAURE"
    low = document.find("v3:documentationOf/v3:serviceEvent/v3:effectiveTime/v3:low", NS)
    assert low.get("value") == "20240312073000"
    header = read_cda_header(etree.tostring(document))
    assert header.service_start == "20240312073000" and header.legal_authenticator is not None


def test_no_responsible_observer_gives_no_legal_authenticator():
    document = report(HEAD + PID + OBR1 + obx(1, "NM", "GLY^Glycémie^L", "6.8"))
    assert document.find("v3:legalAuthenticator", NS) is None
    assert document.find("v3:documentationOf", NS) is not None
