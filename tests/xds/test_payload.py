"""The forms a document travels in through the engine (xds/transforms/payload.py), the
submission built for a CDA (xds/cda/submission.py) and the metadata settings
(xds/transforms/options.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mappings.message import HL7Message
from mappings.transforms.oru_cda import oru_to_cda
from tests.xds.standards import assert_valid
from xds.cda.header import CDAError
from xds.cda.submission import submission_from_cda
from xds.metadata.validation import Actor, validate
from xds.transforms.options import MetadataOptionsError, metadata_options
from xds.transforms.payload import (
    CDA_MEDIA_TYPE, SUBMISSION_MEDIA_TYPE, PayloadError, read_payload, submission_payload)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SETTINGS = {"source-id": "1.2.250.1.999.1.7",
            "class-code": {"code": "11", "scheme": "1.2.250.1.213.1.1.4.1"},
            "practice-setting-code": {"code": "LAB", "scheme": "1.2.250.1.213.1.1.4.9"},
            "healthcare-facility-code": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"}}


def lab_cda() -> bytes:
    text = (SAMPLES / "oru" / "r01-biochemistry.hl7").read_text(encoding="utf-8")
    return oru_to_cda(HL7Message.parse(text))


def test_a_cda_payload_is_recognised():
    """If the payload is a CDA, then it is read as text/xml, bytes unchanged."""
    cda = lab_cda()
    read = read_payload(cda)
    assert (read.media_type, read.cda) == (CDA_MEDIA_TYPE, cda)


def test_a_cda_submission_round_trips_and_validates():
    """If a CDA becomes a submission payload, then it is XDS.b-valid, its metadata passes
    the Document Source rules, and reading it gives the same document bytes back."""
    cda = lab_cda()
    made = submission_from_cda(cda, metadata_options(SETTINGS))
    findings = validate(made.submission, actor=Actor.REPOSITORY)
    assert not [f for f in findings if f.is_error], findings
    data = submission_payload(made.submission, made.documents)
    assert_valid("xdsb", etree.fromstring(data))
    read = read_payload(data)
    assert read.media_type == SUBMISSION_MEDIA_TYPE
    entry = read.submission.documents[0]
    assert read.documents == {entry.entry_uuid: cda}
    assert entry.hash and entry.size == str(len(cda))
    assert entry.class_code.code == "11" and entry.format_code is not None


@pytest.mark.parametrize("data,expected", [
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\r", "HL7 v2 message"),
    (b"<html/>", "neither a CDA ClinicalDocument nor"),
    (b"<not xml", "not well-formed"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DTD"),
])
def test_other_payloads_are_refused_saying_what_they_are(data, expected):
    """If the payload is HL7 v2, another XML or no XML, then the error says which."""
    with pytest.raises(PayloadError, match=expected):
        read_payload(data)


def test_submission_from_something_not_a_cda_is_refused():
    """If the bytes given as a CDA are not one, then CDAError says so."""
    with pytest.raises(CDAError):
        submission_from_cda(b"<x/>", metadata_options(SETTINGS))


def test_metadata_settings_list_every_problem():
    """If several settings are wrong, then one error names each."""
    with pytest.raises(MetadataOptionsError) as caught:
        metadata_options({"source-id": "abc", "class-code": "11", "confidentiality": "X",
                          "colour": "red"})
    text = str(caught.value)
    for part in ("unknown metadata setting 'colour'", "source-id 'abc' is not an OID",
                 "class-code must be a mapping", "confidentiality 'X'"):
        assert part in text


def test_source_id_may_come_from_the_connector():
    """If the settings have no source-id, then the one given beside them is used."""
    assert metadata_options({}, source_id="1.2.3").source_id == "1.2.3"
