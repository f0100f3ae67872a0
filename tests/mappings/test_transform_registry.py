"""A channel's ``transform:`` setting, checked at load and applied to each message."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mappings.message import HL7Message
from mappings.tables import parse_table_bytes
from mappings.transforms.oru_cda import TransformError
from mappings.transforms.registry import TransformConfigError, build_transform
from tests.xds.standards import assert_valid

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TABLES = {"lab-loinc": parse_table_bytes(
    (SAMPLES / "tables" / "lab-loinc.csv").read_bytes(), "lab-loinc.csv")}
NS = {"v3": "urn:hl7-org:v3"}


def test_configured_transform_uses_the_named_table_and_options():
    """If a channel names oru-to-cda with a table and a custodian, then both are used."""
    transform = build_transform({"name": "oru-to-cda", "loinc-table": "lab-loinc",
                                 "custodian-oid": "1.2.250.1.999.1", "custodian-name": "Labo",
                                 "confidentiality": "R"}, TABLES)
    text = (SAMPLES / "oru" / "r01-biochemistry.hl7").read_bytes().decode("utf-8")
    document = etree.fromstring(transform.apply(HL7Message.parse(text)))
    assert_valid("cda", document)
    assert transform.media_type == "text/xml"
    assert document.find(".//v3:observation/v3:code", NS).get("code") == "14749-6"
    custodian = document.find(".//v3:representedCustodianOrganization", NS)
    assert custodian.find("v3:id", NS).get("root") == "1.2.250.1.999.1"
    assert document.find("v3:confidentialityCode", NS).get("code") == "R"


def test_transform_refuses_what_is_not_a_result():
    """If the configured transform gets an ADT, then it raises the transform's error."""
    transform = build_transform({"name": "oru-to-cda"})
    with pytest.raises(TransformError):
        transform.apply(HL7Message.parse("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\r"))


@pytest.mark.parametrize("config,words", [
    ({"name": "oru-to-fhir"}, "unknown transform 'oru-to-fhir'; the transforms are oru-to-cda"),
    ({}, "transform needs a name"),
    ({"name": "oru-to-cda", "loinc": "x"}, "unknown option 'loinc'"),
    ({"name": "oru-to-cda", "loinc-table": "nope"}, "loinc-table 'nope' is not one of the "
     "channel's tables (lab-loinc)"),
    ({"name": "oru-to-cda", "custodian-oid": "CHU"}, "custodian-oid 'CHU' is not an OID"),
    ({"name": "oru-to-cda", "confidentiality": "X"}, "confidentiality 'X' is not one of")])
def test_bad_configuration_is_refused_at_load(config, words):
    """If the transform setting is wrong, then the error says what, before any message."""
    with pytest.raises(TransformConfigError) as caught:
        build_transform(config, TABLES)
    assert words in str(caught.value)
