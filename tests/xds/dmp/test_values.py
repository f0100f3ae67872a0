"""The French value sets, read from the ANS JDV files, and the DMP checks of a submission."""
from __future__ import annotations

import shutil

import pytest

from tests.xds.builders import submission
from tests.standards import standards_dir
from xds.dmp.values import (
    SIGNATURE_CLASS, SIGNATURE_FORMAT, SIGNATURE_TYPE, ValueSetError, check_values,
    load_value_sets,
)
from xds.metadata.errors import REGISTRY_METADATA_ERROR
from xds.metadata.model import Code


def _jdv_folder():
    return standards_dir() / "terminology" / "ans-jdv"


def test_value_sets_come_from_the_jdv_files(value_sets):
    """If a JDV were read wrongly, its size or OID would differ from the ANS file."""
    sizes = {name: (value_set.oid, len(value_set.concepts))
             for name, value_set in value_sets.by_attribute.items()}
    assert sizes["typeCode"] == ("1.2.250.1.213.1.1.5.471", 114)
    assert sizes["healthcareFacilityTypeCode"] == ("1.2.250.1.213.1.1.5.466", 69)
    assert sizes["practiceSettingCode"] == ("1.2.250.1.213.1.1.5.467", 12)
    assert sizes["confidentialityCode"] == ("1.2.250.1.213.1.1.5.463", 6)
    assert Code("SA01", "1.2.250.1.71.4.2.4") in value_sets["healthcareFacilityTypeCode"]
    assert Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13") in value_sets["confidentialityCode"]


def test_signature_document_codes_are_accepted(value_sets):
    """If the signature document's own codes were refused, no DMP submission could pass."""
    assert SIGNATURE_TYPE in value_sets["typeCode"]          # from JDV_J07 itself
    assert SIGNATURE_CLASS in value_sets["classCode"]
    assert SIGNATURE_FORMAT in value_sets["formatCode"]


def test_a_valid_submission_passes(value_sets):
    """If a correct submission were refused, nothing could be published."""
    assert check_values(submission(2), value_sets) == []


def test_unknown_code_names_the_jdv(value_sets):
    """If the message did not name the code and the JDV, the sender could not fix it."""
    sub = submission()
    sub.documents[0].type_code = Code("99999-9", "2.16.840.1.113883.6.1", "Inconnu")
    [error] = check_values(sub, value_sets)
    assert error.error_code == REGISTRY_METADATA_ERROR
    assert error.location == "Document01"
    assert error.code_context == (
        "DocumentEntry 'Document01': typeCode '99999-9' (codingScheme '2.16.840.1.113883.6.1')"
        " is not in JDV_J07_XdsTypeCode_CISIS (1.2.250.1.213.1.1.5.471)")


def test_wrong_coding_scheme_names_the_right_one(value_sets):
    """If a right code in the wrong system were reported as unknown, the fix would be missed."""
    sub = submission()
    sub.documents[0].practice_setting_code = Code("ETABLISSEMENT", "1.2.3")
    [error] = check_values(sub, value_sets)
    assert "in JDV_J04_XdsPracticeSettingCode_CISIS (1.2.250.1.213.1.1.5.467) it belongs to" \
           " 1.2.250.1.213.1.1.4.9" in error.code_context


@pytest.mark.parametrize("field_name, value", [
    ("class_code", Code("77", "1.2.250.1.213.1.1.4.1")),
    ("format_code", Code("urn:nowhere", "1.2.250.1.213.1.1.4.2.282")),
    ("healthcare_facility_type_code", Code("SA99", "1.2.250.1.71.4.2.4")),
])
def test_each_coded_attribute_is_checked(value_sets, field_name, value):
    """If an attribute were not checked, a wrong code would reach the DMP."""
    sub = submission()
    setattr(sub.documents[0], field_name, value)
    [error] = check_values(sub, value_sets)
    assert repr(value.code) in error.code_context


def test_confidentiality_codes_are_checked_and_counted(value_sets):
    """If confidentiality were unchecked, a wrong mask code could expose a document."""
    sub = submission()
    sub.documents[0].confidentiality_codes.append(Code("SECRET", "1.2.250.1.213.1.1.4.13"))
    [error] = check_values(sub, value_sets)
    assert "confidentialityCode 'SECRET'" in error.code_context
    sub.documents[0].confidentiality_codes = [Code("N", "2.16.840.1.113883.5.25")] * 5
    [error] = check_values(sub, value_sets)
    assert "at most 4" in error.code_context


@pytest.mark.parametrize("field_name, attribute", [
    ("title", "title"), ("legal_authenticator", "legalAuthenticator"),
    ("service_start_time", "serviceStartTime"), ("source_patient_info", "sourcePatientInfo"),
    ("authors", "author"),
])
def test_attributes_the_dmp_requires(value_sets, field_name, attribute):
    """If an attribute the DMP requires 1..1 were missing, the DMP would refuse the submission."""
    sub = submission()
    setattr(sub.documents[0], field_name, [] if field_name in ("authors", "source_patient_info")
            else "")
    [error] = check_values(sub, value_sets)
    assert error.code_context == (f"DocumentEntry 'Document01' has no {attribute},"
                                  " which the DMP requires (1..1)")


def test_folder_missing_a_jdv_is_refused_at_load(tmp_path):
    """If a wrong folder loaded, the first submission would fail at the DMP instead of at start."""
    for name in ("JDV_J07_XdsTypeCode_CISIS.xml", "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml"):
        shutil.copy(_jdv_folder() / name, tmp_path / name)
    with pytest.raises(ValueSetError, match=r"practiceSettingCode \(1.2.250.1.213.1.1.5.467\)"
                                            r", confidentialityCode"):
        load_value_sets(tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"<notsvs/>", "not an SVS RetrieveValueSetResponse"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DTD"),
    (b"<unclosed>", "not well-formed"),
])
def test_file_that_is_no_jdv_is_refused(tmp_path, content, message):
    """If a stray or hostile file were read as a JDV, the checks would use garbage."""
    (tmp_path / "stray.xml").write_bytes(content)
    with pytest.raises(ValueSetError, match=message):
        load_value_sets(tmp_path)


def test_a_jdv_file_replaces_the_fallback(tmp_path):
    """If a published JDV_J06 were ignored, new ANS classes would be refused."""
    for path in _jdv_folder().glob("*.xml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "JDV_J06.xml").write_text(
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008"><ValueSet'
        ' id="1.2.250.1.213.1.1.5.462" displayName="JDV_J06_XdsClassCode_CISIS.tabs">'
        '<ConceptList><Concept code="13" codeSystem="1.2.250.1.213.1.1.4.1"'
        ' displayName="Nouvelle classe"/></ConceptList></ValueSet></RetrieveValueSetResponse>')
    loaded = load_value_sets(tmp_path)["classCode"]
    assert loaded.name == "JDV_J06_XdsClassCode_CISIS"
    assert Code("13", "1.2.250.1.213.1.1.4.1") in loaded
    assert Code("10", "1.2.250.1.213.1.1.4.1") not in loaded
