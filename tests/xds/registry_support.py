"""Helpers of the built-in registry tests: the IHE samples as submissions, queries built
the way a Document Consumer sends them, and a submission replacing a registered entry."""
from __future__ import annotations

from dataclasses import replace

from lxml import etree

from tests.standards import sample
from xds.metadata.model import Association, Submission
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import HAS_MEMBER, RPLC
from xds.namespaces import QUERY, RIM, qname, rim
from xds.safexml import parse_xml
from xds.soap.documents import read_documents
from xds.soap.envelope import parse_envelope

PNR_SAMPLES = ("xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest.xml",
               "xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest_SOAP.xml")
REGISTER_SAMPLES = ("xds/examples/ihe/RegisterDocumentSet-bRequest.xml",
                    "xds/examples/ihe/RegisterDocumentSet-bRequest_SOAP.xml")
#: The samples send sourceId 3670984664, no OID: accepted with a warning; tests that want
#: an answer with no finding at all put an OID in its place (fixed()).
SAMPLE_SOURCE_ID = "1.3.6.1.4.1.21367.2005.3.7"
REPOSITORY = "1.2.250.1.999.7.1"
APPROVED = ("urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",)
DEPRECATED = ("urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated",)


def sample_body(relative: str) -> etree._Element:
    data = sample(relative).read_bytes()
    return parse_envelope(data).body if relative.endswith("_SOAP.xml") else parse_xml(data)


def fixed(submission: Submission) -> Submission:
    """The sample with an OID as its sourceId (no warning in the answer)."""
    sets = [replace(s, source_id=SAMPLE_SOURCE_ID) for s in submission.submission_sets]
    return replace(submission, submission_sets=sets)


def pnr_sample(relative: str) -> tuple[Submission, dict]:
    body = sample_body(relative)
    return read_submission(body), read_documents(body, {})


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def adhoc_query(query_id: str, parameters: dict[str, list | str],
                return_type: str = "LeafClass") -> etree._Element:
    """An AdhocQueryRequest; a list value is one Slot holding a ('a','b') list, a tuple of
    lists is one Slot per list (the AND form), a str one quoted value."""
    request = etree.Element(qname(QUERY, "AdhocQueryRequest"), nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(request, qname(QUERY, "ResponseOption"), returnType=return_type,
                     returnComposedObjects="true")
    query = etree.SubElement(request, rim("AdhocQuery"), id=query_id)
    for name, value in parameters.items():
        groups = value if isinstance(value, tuple) else (value,)
        for group in groups:
            slot = etree.SubElement(query, rim("Slot"), name=name)
            text = (quoted(group) if isinstance(group, str)
                    else "(" + ",".join(quoted(v) for v in group) + ")")
            etree.SubElement(etree.SubElement(slot, rim("ValueList")), rim("Value")).text = text
    return request


def replacement(original: Submission, replaced_uuid: str, number: int = 2) -> Submission:
    """A submission of a new version of *original*'s document, replacing *replaced_uuid*."""
    document = replace(original.documents[0], entry_uuid="Document01",
                       unique_id=f"{original.documents[0].unique_id}.{number}")
    submission_set = replace(original.submission_sets[0], entry_uuid="SubmissionSet01",
                             unique_id=f"{original.submission_sets[0].unique_id}.{number}")
    return Submission(
        submission_sets=[submission_set], documents=[document],
        associations=[Association("as01", HAS_MEMBER, "SubmissionSet01", "Document01",
                                  {"SubmissionSetStatus": ["Original"]}),
                      Association("as02", RPLC, "Document01", replaced_uuid)])
