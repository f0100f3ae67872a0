"""Tests for xds.cda.submission and xds.client.queries: what ``aiguillage xds submit`` sends
for a CDA, and the stored queries ``xds query``/``retrieve`` send, valid against the XDS.b
rules and the official schemas. Pure: no socket, no reactor."""
from __future__ import annotations

import hashlib

import pytest

from tests import standards
from tests.xds.standards import assert_valid
from xds.cda.header import CDAError
from xds.cda.submission import submission_from_cda
from xds.client.queries import find_documents, get_documents
from xds.metadata.model import Code
from xds.metadata.validation import validate
from xds.registry.adhoc import read_adhoc_query_request
from xds.soap.documents import provide_and_register_request
from xds.transforms.mdm import SubmissionOptions

OPTIONS = SubmissionOptions("1.2.250.1.999.8", class_code=Code("10", "1.2.250.1.213.1.1.4.1"))


@pytest.mark.parametrize("sample", ["LDL-SES_2022.01.xml", "BIO-CR-BIO_2024.01_TSH_1.xml",
                                    "DOC_NON_STRUCTURE_CDA-R2-N1.xml"])
def test_an_ans_cda_becomes_a_valid_submission(sample):
    """If an ANS example document is submitted, then its metadata passes the registry's rules,
    carries its hash and size, and the ITI-41 body validates against the XDS.b schema."""
    data = standards.sample(f"cda/examples/ans/{sample}").read_bytes()
    made = submission_from_cda(data, OPTIONS, now=lambda: 1733480000.0)
    submission, documents = made.submission, made.documents
    assert validate(submission) == []
    [entry] = submission.documents
    assert (entry.hash, entry.size) == (hashlib.sha1(data).hexdigest(), str(len(data)))
    assert documents == {entry.entry_uuid: data}
    assert submission.submission_sets[0].submission_time == "20241206101320"
    body, _ = provide_and_register_request(submission, documents, optimise=False)
    assert_valid("xdsb", body)


@pytest.mark.parametrize("data,error", [
    (b"<html/>", "ClinicalDocument"), (b"not xml", "well-formed"),
    (b"<!DOCTYPE x [<!ENTITY a 'b'>]><ClinicalDocument xmlns='urn:hl7-org:v3'/>", "DTD"),
])
def test_what_is_not_a_cda_is_refused(data, error):
    """If a file is no CDA, or unsafe XML, then it is refused as a CDAError saying why."""
    with pytest.raises(CDAError) as refused:
        submission_from_cda(data, OPTIONS)
    assert error.lower() in str(refused.value).lower()


def test_the_queries_are_read_back_by_the_registry_and_valid():
    """If the consumer's FindDocuments and GetDocuments are read by the registry's own reader,
    then their parameters come back as sent (quotes doubled), and both validate."""
    request = find_documents("9^^^&1.2.3&ISO", ["urn:a", "urn:b"],
                             ["11490-0^^2.16.840.1.113883.6.1"])
    assert_valid("query", request)
    read = read_adhoc_query_request(request)
    assert read.parameters["$XDSDocumentEntryPatientId"] == [["9^^^&1.2.3&ISO"]]
    assert read.parameters["$XDSDocumentEntryStatus"] == [["urn:a", "urn:b"]]
    request = get_documents(["1.2.3'4"])
    assert_valid("query", request)
    assert read_adhoc_query_request(request).parameters["$XDSDocumentEntryUniqueId"] == [
        ["1.2.3'4"]]
