"""
The hand-written messages under ``samples/`` are what they claim to be.

Every good sample is decoded with the charset its MSH-18 names and parsed by two independent
parsers, python-hl7 and hl7apy, used here as oracles: if either disagrees with the fields we
expect, the sample (not the engine) is wrong.  The bad samples are checked to be bad exactly
in the way ``samples/README.md`` says, so that a test feeding them to the engine exercises the
error it means to.
"""
from __future__ import annotations

import base64
import codecs
from pathlib import Path

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ParserError
from hl7apy.parser import parse_message

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# HL7 table 0211 names used by the samples -> Python codecs.  An empty MSH-18 means ASCII.
CHARSETS = {"": "ascii", "ASCII": "ascii", "8859/1": "latin-1", "UNICODE UTF-8": "utf-8"}

IPP_OID = "1.2.250.1.999.1.1"
INS_NIR_OID = "1.2.250.1.213.1.4.8"
HELENE_IPP = "00451203"
HELENE_INS = "285076311304523"

# file -> (MSH-9, MSH-10, MSH-18, PID-3.1 of the first repetition, INS matricule)
GOOD = {
    "adt/a01-admission.hl7": ("ADT^A01^ADT_A01", "GAM20240312000451", "8859/1",
                              HELENE_IPP, HELENE_INS),
    "adt/a04-registration.hl7": ("ADT^A04^ADT_A01", "GAM20240312000467", "UNICODE UTF-8",
                                 "00461950", "152116938311716"),
    "adt/a08-update.hl7": ("ADT^A08^ADT_A01", "GAM20240313001207", "UNICODE UTF-8",
                           HELENE_IPP, HELENE_INS),
    "adt/a03-discharge.hl7": ("ADT^A03^ADT_A03", "GAM20240315002288", "UNICODE UTF-8",
                              HELENE_IPP, HELENE_INS),
    "adt/a40-merge.hl7": ("ADT^A40^ADT_A39", "GAM20240318000093", "UNICODE UTF-8",
                          HELENE_IPP, HELENE_INS),
    "oru/r01-biochemistry.hl7": ("ORU^R01^ORU_R01", "SIL240312007811", "UNICODE UTF-8",
                                 HELENE_IPP, HELENE_INS),
    "oru/r01-haematology.hl7": ("ORU^R01^ORU_R01", "SIL240312008040", "UNICODE UTF-8",
                                "00461950", "152116938311716"),
    "mdm/t02-document.hl7": ("MDM^T02^MDM_T02", "DPI20240315000318", "UNICODE UTF-8",
                             HELENE_IPP, HELENE_INS),
    "mdm/t02-cda-consultation.hl7": ("MDM^T02^MDM_T02", "DPI20260313000977", "UNICODE UTF-8",
                                     "00461950", "152116938311716"),
    "mdm/t02-dictated.hl7": ("MDM^T02^MDM_T02", "DPI20260317001102", "UNICODE UTF-8",
                             "00472318", "248096343012736"),
}
# The PAM France feed of the practice channel (samples/adt-pam-fr/), whose PID-3 is not always
# "IPP then INS": file -> (MSH-9, MSH-10, PID-32, PID-3 as (id, authority OID, type)).
GHT_OID = "1.2.250.1.999.2.1"
MARIE_THERESE = [("00472318", IPP_OID, "PI"), ("7700215", GHT_OID, "PI"),
                 ("248096343012736", INS_NIR_OID, "INS")]
PAM_FR = {
    "adt-pam-fr/a01-admission.hl7": ("ADT^A01^ADT_A01", "GAM20260310000812", "QUAL",
                                     MARIE_THERESE),
    "adt-pam-fr/a02-transfer.hl7": ("ADT^A02^ADT_A02", "GAM20260312004377", "QUAL",
                                    MARIE_THERESE),
    "adt-pam-fr/a03-discharge.hl7": ("ADT^A03^ADT_A03", "GAM20260317002102", "QUAL",
                                     MARIE_THERESE),
    "adt-pam-fr/a04-registration-no-ins.hl7": ("ADT^A04^ADT_A01", "GAM20260311003018", "PROV",
                                               [("00472964", IPP_OID, "PI")]),
    "adt-pam-fr/a11-cancel-admission.hl7": ("ADT^A11^ADT_A09", "GAM20260313001544", "QUAL",
                                            [("00461950", IPP_OID, "PI"),
                                             ("152116938311716", INS_NIR_OID, "INS")]),
    "adt-pam-fr/a31-identity-recup.hl7": ("ADT^A31^ADT_A05", "GAM20260314000219", "RECUP",
                                          [("00473055", IPP_OID, "PI"),
                                           ("279059935004263", INS_NIR_OID, "INS")]),
    "adt-pam-fr/a40-merge.hl7": ("ADT^A40^ADT_A39", "GAM20260318000457", "QUAL",
                                 MARIE_THERESE),
}
for _name, (_type, _control, _, _ids) in PAM_FR.items():
    GOOD[_name] = (_type, _control, "UNICODE UTF-8", _ids[0][0], None)
BAD = {
    "bad/no-msh.hl7", "bad/truncated.hl7", "bad/garbage.bin", "bad/wrong-encoding.hl7",
    "bad/unknown-charset.hl7",
}
TABLES = {"tables/lab-loinc.csv", "tables/sex-hl7-to-fhir.yaml",  # tested in tests/mappings
          # used by the shipped channels: tests/test_shipped_channels.py
          "tables/sex-hl7-to-practice.yaml", "tables/pam-fr-movement-action.yaml",
          "tables/document-type-loinc.csv"}


def raw(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def msh_fields(data: bytes) -> list[bytes]:
    """MSH split on the field separator; index i holds MSH-(i+1) since MSH-1 is the '|'."""
    return data.split(b"\r", 1)[0].split(b"|")


def decode(data: bytes) -> str:
    """Decode strictly with the charset MSH-18 names (ASCII is enough to read MSH)."""
    fields = msh_fields(data)
    charset = fields[17].decode("ascii") if len(fields) > 17 else ""
    return data.decode(CHARSETS[charset])


def oracles(name: str):
    """The sample parsed by python-hl7 and by hl7apy (tolerant, no group inference).

    python-hl7 addresses ``segment(field)(repetition)(component)(subcomponent)``, all from 1;
    hl7apy by name (``pid.pid_3[0].cx_4.hd_2``).
    """
    text = decode(raw(name))
    return hl7.parse(text), parse_message(
        text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT
    )


def segments(apy_message, name: str) -> list:
    return [child for child in apy_message.children if child.name == name]


def nir_key_ok(nir: str) -> bool:
    return len(nir) == 15 and nir.isdigit() and 97 - int(nir[:13]) % 97 == int(nir[13:])


def test_samples_tree_is_exactly_the_documented_set():
    """If a sample is added or removed, then this list, the tests and the README must follow."""
    found = {str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*") if p.is_file()}
    assert found == set(GOOD) | BAD | TABLES | {"README.md", ".gitattributes"}
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    for name in set(GOOD) | BAD | TABLES:
        assert name in readme, f"samples/README.md does not describe {name}"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_sample_bytes_are_hl7_segments(name):
    """If a sample is well formed, then it starts with MSH, uses CR only and ends with CR."""
    data = raw(name)
    assert data.startswith(b"MSH|^~\\&|")
    assert data.endswith(b"\r")
    assert b"\n" not in data
    assert b"\r\r" not in data


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_sample_header_read_by_both_oracles(name):
    """If both parsers read the sample, then they agree on MSH-9, MSH-10 and MSH-18."""
    msh9, control_id, charset, _, _ = GOOD[name]
    parsed, apy = oracles(name)
    msh = parsed.segment("MSH")
    assert str(msh(9)) == msh9
    assert str(msh(10)) == control_id
    assert str(msh(18)) == charset
    assert str(msh(17)) == "FRA"
    assert apy.msh.msh_9.to_er7() == msh9
    assert apy.msh.msh_10.to_er7() == control_id
    assert apy.msh.msh_18.to_er7() == charset
    assert apy.msh.msh_12.to_er7().split("^")[0] == "2.5"


@pytest.mark.parametrize("name", sorted(set(GOOD) - set(PAM_FR)))
def test_good_sample_pid3_holds_ipp_then_qualified_ins(name):
    """If PID-3 is right, then repetition 1 is the local IPP (PI) and 2 the INS-NIR (INS)."""
    _, _, _, ipp, ins = GOOD[name]
    parsed, apy = oracles(name)
    pid3 = parsed.segment("PID")(3)
    assert len(pid3) == 2
    assert str(pid3(1)(1)) == ipp
    assert str(pid3(1)(4)(2)) == IPP_OID
    assert str(pid3(1)(5)) == "PI"
    assert str(pid3(2)(1)) == ins
    assert str(pid3(2)(4)(1)) == "ASIP-SANTE-INS-NIR"
    assert str(pid3(2)(4)(2)) == INS_NIR_OID
    assert str(pid3(2)(4)(3)) == "ISO"
    assert str(pid3(2)(5)) == "INS"
    assert nir_key_ok(ins)
    repetitions = apy.pid.pid_3
    assert [r.cx_1.to_er7() for r in repetitions] == [ipp, ins]
    assert [r.cx_4.hd_2.to_er7() for r in repetitions] == [IPP_OID, INS_NIR_OID]
    assert [r.cx_5.to_er7() for r in repetitions] == ["PI", "INS"]


@pytest.mark.parametrize("name", sorted(PAM_FR))
def test_pam_fr_sample_identity_as_the_gam_sends_it(name):
    """If a PAM France sample is right, then both parsers read its PID-3 identifiers in the
    GAM's order with their authorities and types, PID-32 its identity status, every INS has a
    valid NIR key, and the header names the PAM France 2.11 profile."""
    _, _, status, ids = PAM_FR[name]
    parsed, apy = oracles(name)
    pid3 = parsed.segment("PID")(3)
    assert [(str(r(1)), str(r(4)(2)), str(r(5))) for r in pid3] == ids
    assert [(r.cx_1.to_er7(), r.cx_4.hd_2.to_er7(), r.cx_5.to_er7()) for r in apy.pid.pid_3] \
        == ids
    assert str(parsed.segment("PID")(32)) == status
    assert all(nir_key_ok(i) for i, _, kind in ids if kind == "INS")
    assert str(parsed.segment("MSH")(21)) == "2.11^IHE_FRANCE-2.11-PAM"
    assert str(parsed.segment("MSH")(12)) == "2.5^FRA^2.11"


def test_pam_fr_movements_tell_their_story():
    """If the PAM France samples tell one story, then the movements carry the ZBE actions,
    the cancellation names the event it cancels, and the merge names the duplicate IPP."""
    zbe = {name: oracles(name)[0].segment("ZBE") for name in PAM_FR
           if "ZBE" in decode(raw(name))}
    assert sorted(zbe) == ["adt-pam-fr/a01-admission.hl7", "adt-pam-fr/a02-transfer.hl7",
                           "adt-pam-fr/a03-discharge.hl7",
                           "adt-pam-fr/a04-registration-no-ins.hl7",
                           "adt-pam-fr/a11-cancel-admission.hl7"]
    assert {str(s(4)) for name, s in zbe.items() if "a11" not in name} == {"INSERT"}
    cancel = zbe["adt-pam-fr/a11-cancel-admission.hl7"]
    assert (str(cancel(4)), str(cancel(6))) == ("CANCEL", "A01")
    discharge = oracles("adt-pam-fr/a03-discharge.hl7")[0].segment("PV1")
    assert (str(discharge(44)), str(discharge(45))) == ("20260310082500", "20260317160000")
    merge = oracles("adt-pam-fr/a40-merge.hl7")[0].segment("MRG")
    assert str(merge(1)(1)(1)) == "00472401"
    assert "Ï" in decode(raw("adt-pam-fr/a04-registration-no-ins.hl7"))


def test_nir_key_check_rejects_a_wrong_key():
    """If the key check accepted anything, then the INS assertions above would prove nothing."""
    assert nir_key_ok(HELENE_INS)
    assert not nir_key_ok(HELENE_INS[:13] + "24")
    assert not nir_key_ok(HELENE_INS[:14])


def test_a01_is_really_latin1_with_pam_france_identity():
    """If the A01 says 8859/1, then its accents are single latin-1 bytes, not UTF-8."""
    data = raw("adt/a01-admission.hl7")
    assert b"H\xe9l\xe8ne" in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    parsed, apy = oracles("adt/a01-admission.hl7")
    pid = parsed.segment("PID")
    names = pid(5)
    assert [str(names(i)(1)) for i in (1, 2)] == ["LEFÈVRE", "GARNIER"]
    assert [str(names(i)(7)) for i in (1, 2)] == ["L", "D"]
    assert str(names(1)(2)) == "Hélène"
    assert str(names(1)(3)) == "Hélène Marie Françoise"
    assert str(pid(7)) == "19850714"
    assert str(pid(8)) == "F"
    birthplace = [pid(11)(i) for i in range(1, len(pid(11)) + 1) if str(pid(11)(i)(7)) == "BDL"]
    assert [str(b(9)) for b in birthplace] == ["63113"]
    assert str(pid(32)) == "VALI"
    assert str(parsed.segment("PV1")(2)) == "I"
    assert str(parsed.segment("EVN")(2)) == "20240312083015"
    zbe = parsed.segment("ZBE")
    assert [str(zbe(4)), str(zbe(5)), str(zbe(9))] == ["INSERT", "N", "HMS"]
    assert str(parsed.segment("PV2")(3)(1)(1)) == "R07.4"
    assert segments(apy, "ZBE")[0].to_er7() == str(zbe)


@pytest.mark.parametrize("name", sorted(n for n in GOOD if GOOD[n][2] == "UNICODE UTF-8"))
def test_utf8_samples_need_utf8(name):
    """If a sample says UTF-8, then it holds multi-byte characters that latin-1 would garble."""
    data = raw(name)
    text = data.decode("utf-8")
    assert any(ord(c) > 127 for c in text)
    assert data.decode("latin-1") != text


def test_a04_is_an_outpatient_with_an_insi_qualified_identity():
    """If the A04 registers an outpatient, then PV1-2 is O, PID-32 QUAL and ZFD-5 INSI."""
    parsed, _ = oracles("adt/a04-registration.hl7")
    assert str(parsed.segment("PV1")(2)) == "O"
    assert str(parsed.segment("PID")(32)) == "QUAL"
    assert str(parsed.segment("ZFD")(5)) == "INSI"
    # Œ is absent from ISO 8859-1: this name can only travel in UTF-8.
    assert str(parsed.segment("PID")(5)(1)(1)) == "LECŒUR"
    assert str(parsed.segment("ZBE")(4)) == "INSERT"


def test_a08_updates_the_a01_patient_address():
    """If the A08 is an update, then the person is the A01's and only the address moved."""
    before, _ = oracles("adt/a01-admission.hl7")
    after, _ = oracles("adt/a08-update.hl7")
    for field in (3, 5, 7, 8, 32):
        assert str(after.segment("PID")(field)) == str(before.segment("PID")(field))
    assert str(after.segment("PID")(11)(1)) != str(before.segment("PID")(11)(1))
    assert str(after.segment("PID")(11)(1)(1)) == "7 avenue Julien"


def test_a03_closes_the_a01_stay():
    """If the A03 discharges, then PV1-45 is set and the visit number is the A01's."""
    admission, _ = oracles("adt/a01-admission.hl7")
    discharge, _ = oracles("adt/a03-discharge.hl7")
    assert str(discharge.segment("PV1")(45)) == "20240315174500"
    assert str(discharge.segment("PV1")(19)) == str(admission.segment("PV1")(19))
    assert str(discharge.segment("ZBE")(4)) == "INSERT"


def test_a40_merges_a_duplicate_ipp_into_the_a01_patient():
    """If the A40 merges, then MRG-1 is another IPP of the same assigning authority."""
    parsed, apy = oracles("adt/a40-merge.hl7")
    mrg = parsed.segment("MRG")
    assert str(mrg(1)(1)(1)) == "00461877"
    assert str(mrg(1)(1)(1)) != HELENE_IPP
    assert str(mrg(1)(1)(4)(2)) == IPP_OID
    assert str(mrg(1)(1)(5)) == "PI"
    assert apy.mrg.mrg_1.cx_1.to_er7() == "00461877"


def _range_allows(value: float, reference: str) -> str:
    """The flag a value deserves against an OBX-7 range such as '4.1-5.9', '<5' or '>60'."""
    if reference.startswith("<"):
        return "H" if value >= float(reference[1:]) else "N"
    if reference.startswith(">"):
        return "L" if value <= float(reference[1:]) else "N"
    low, high = (float(x) for x in reference.split("-"))
    return "L" if value < low else "H" if value > high else "N"


@pytest.mark.parametrize("name, minimum", [
    ("oru/r01-biochemistry.hl7", 8), ("oru/r01-haematology.hl7", 8),
])
def test_oru_results_are_coded_with_units_ranges_and_coherent_flags(name, minimum):
    """If an OBX flags a value H or L, then its value lies outside its reference range."""
    parsed, apy = oracles(name)
    observations = parsed.segments("OBX")
    assert len(observations) >= minimum
    assert [str(o(1)) for o in observations] == [str(i) for i in range(1, len(observations) + 1)]
    for obx in observations:
        assert str(obx(2)) == "NM"
        assert str(obx(3)(1)(3)) == "L"
        assert str(obx(6)(1)(3)) == "UCUM"
        assert str(obx(11)) == "F"
        assert str(obx(8)) == _range_allows(float(str(obx(5))), str(obx(7)))
    flags = {str(o(8)) for o in observations}
    assert {"H", "L"} & flags and "N" in flags
    assert len(segments(apy, "OBX")) == len(observations)
    assert str(parsed.segment("OBR")(25)) == "F"


def test_biochemistry_uses_the_local_codes():
    """If the lab sends local codes, then OBX-3.1 holds them, with their French labels."""
    parsed, apy = oracles("oru/r01-biochemistry.hl7")
    codes = {str(o(3)(1)(1)): str(o(3)(1)(2)) for o in parsed.segments("OBX")}
    assert codes["GLY"] == "Glycémie"
    assert codes["CREA"] == "Créatinine"
    assert {"NA", "K", "UREE", "CL", "CRP", "DFG"} <= set(codes)
    assert [s.obx_3.ce_1.to_er7() for s in segments(apy, "OBX")] == list(codes)


def test_haematology_carries_loinc_as_alternate_coding():
    """If the lab maps its codes, then OBX-3.4-6 carry a LOINC code next to the local one."""
    parsed, _ = oracles("oru/r01-haematology.hl7")
    observations = parsed.segments("OBX")
    assert all(str(o(3)(1)(6)) == "LN" and str(o(3)(1)(4)) for o in observations)
    assert {str(o(3)(1)(1)): str(o(3)(1)(4)) for o in observations}["HB"] == "718-7"


def test_mdm_carries_a_readable_pdf():
    """If the MDM's OBX is ED base64, then it decodes to a PDF whose xref offset is right."""
    parsed, apy = oracles("mdm/t02-document.hl7")
    txa = parsed.segment("TXA")
    assert str(txa(12)(1)(1)) == "DOC2024000451.1"
    assert str(txa(17)) == "AU"
    obx = parsed.segment("OBX")
    assert str(obx(2)) == "ED"
    assert [str(obx(5)(1)(i)) for i in (2, 3, 4)] == ["AP", "PDF", "Base64"]
    pdf = base64.b64decode(str(obx(5)(1)(5)), validate=True)
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[startxref:].startswith(b"xref")
    assert apy.obx.obx_5.to_er7() == str(obx(5))


def test_mdm_cda_consultation_carries_a_cda_for_the_same_patient():
    """If the CDA sample is right, then OBX-5 decodes to a CDA R2 header whose recordTarget
    holds the INS and IPP of PID-3, typed with the LOINC code of a consult note."""
    from lxml import etree

    parsed, _ = oracles("mdm/t02-cda-consultation.hl7")
    assert (str(parsed.segment("TXA")(17)), str(parsed.segment("TXA")(2)(1)(1))) == \
        ("LA", "CRCONS")
    obx = parsed.segment("OBX")
    assert [str(obx(5)(1)(i)) for i in (2, 3, 4)] == ["TEXT", "XML", "Base64"]
    data = base64.b64decode(str(obx(5)(1)(5)), validate=True)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    cda = etree.fromstring(data, parser)
    ns = {"h": "urn:hl7-org:v3"}
    ids = {i.get("root"): i.get("extension")
           for i in cda.findall("h:recordTarget/h:patientRole/h:id", ns)}
    assert ids == {INS_NIR_OID: "152116938311716", IPP_OID: "00461950"}
    assert cda.find("h:code", ns).get("code") == "11488-4"
    assert cda.find("h:id", ns).get("extension") == str(parsed.segment("TXA")(12)(1)(1))


def test_mdm_dictated_is_not_signed_yet():
    """If the dictated sample is right, then its TXA-17 is DI and its OBX-5 a short text."""
    parsed, _ = oracles("mdm/t02-dictated.hl7")
    assert str(parsed.segment("TXA")(17)) == "DI"
    text = base64.b64decode(str(parsed.segment("OBX")(5)(1)(5))).decode("utf-8")
    assert text.startswith("Lettre de liaison provisoire")


# --- the bad samples are bad in the way they claim ---------------------------------------------


def test_no_msh_has_no_header_and_both_oracles_refuse_it():
    """If MSH is missing, then the file is otherwise plain UTF-8 HL7 that no parser accepts."""
    data = raw("bad/no-msh.hl7")
    assert data.startswith(b"PID|")
    assert b"MSH" not in data
    text = data.decode("utf-8")
    with pytest.raises(hl7.ParseException):
        hl7.parse(text)
    with pytest.raises(ParserError):
        parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)


def test_truncated_stops_inside_msh_before_control_id_and_version():
    """If MSH is cut, then there is a single unterminated segment without MSH-10 or MSH-12."""
    data = raw("bad/truncated.hl7")
    assert data.startswith(b"MSH|^~\\&|")
    assert b"\r" not in data
    fields = msh_fields(data)
    assert 3 <= len(fields) < 10
    assert fields[-1] == b"ADT^A0"
    with pytest.raises(IndexError):
        hl7.parse(data.decode("ascii")).segment("MSH")(10)


def test_garbage_is_not_text_and_not_framing():
    """If a file is garbage, then it is neither HL7 nor UTF-8, and holds no MLLP byte."""
    data = raw("bad/garbage.bin")
    assert len(data) == 512
    assert not data.startswith(b"MSH")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert len(set(data)) > 128
    assert not {0x0B, 0x1C, 0x0D} & set(data)


def test_wrong_encoding_claims_utf8_but_holds_latin1():
    """If MSH-18 lies, then a strict UTF-8 decode fails where latin-1 reads the names."""
    data = raw("bad/wrong-encoding.hl7")
    assert msh_fields(data)[17] == b"UNICODE UTF-8"
    with pytest.raises(UnicodeDecodeError):
        decode(data)
    assert "LEFÈVRE^Hélène" in data.decode("latin-1")


def test_unknown_charset_is_otherwise_a_valid_message():
    """If MSH-18 is KLINGON, then only the charset is wrong: the ASCII message parses."""
    data = raw("bad/unknown-charset.hl7")
    charset = msh_fields(data)[17].decode("ascii")
    assert charset == "KLINGON"
    assert charset not in CHARSETS
    with pytest.raises(LookupError):
        codecs.lookup(charset)
    with pytest.raises(KeyError):
        decode(data)
    text = data.decode("ascii")
    assert str(hl7.parse(text).segment("MSH")(10)) == "GAM20240313001300"
    apy = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    assert apy.msh.msh_10.to_er7() == "GAM20240313001300"
