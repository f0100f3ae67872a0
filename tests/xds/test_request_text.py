"""The client's requests written as text: byte for byte what lxml writes of the trees the
same builders make (ITI-41, ITI-42 bodies and the request envelope), so that the text
path sends what the XSD-validated trees would."""
from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.xds.builders import counter_ids, submission
from xds.metadata.model import Submission
from xds.metadata.writing import submit_objects_request, submit_objects_request_bytes
from xds.metadata.vocabulary import ACTION_PNR
from xds.safexml import to_bytes
from xds.soap.documents import provide_and_register_bytes, provide_and_register_request
from xds.soap.envelope import request_envelope, request_envelope_bytes

_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                  blacklist_characters="\ufffe\uffff",
                                  min_codepoint=0x9).filter(lambda c: c >= " " or c in "\t\n\r"))


def part_ids():
    numbers = itertools.count()
    return lambda: f"part{next(numbers)}@example"


def both_pnr(spec: Submission, documents: dict, optimise: bool):
    tree, tree_parts = provide_and_register_request(spec, documents, optimise=optimise,
                                                    new_id=counter_ids(),
                                                    new_part_id=part_ids())
    text, text_parts = provide_and_register_bytes(spec, documents, optimise=optimise,
                                                  new_id=counter_ids(), new_part_id=part_ids())
    return etree.tostring(tree, encoding="UTF-8"), text, tree_parts, text_parts


@pytest.mark.parametrize("optimise", [True, False], ids=["MTOM", "inline"])
@pytest.mark.parametrize("spec,documents", [
    (submission(), {"Document01": b"<ClinicalDocument/>"}),
    (submission(3, folder=True), {"Document01": b"a", "Document02": b"", "Document03": b"c"}),
    (Submission(), {}),
    (submission(), {'Doc"<&>\t': b"x"}),
], ids=["one document", "three and a folder", "empty", "markup in the id"])
def test_provide_and_register_text_is_what_lxml_writes(spec, documents, optimise):
    """If the ITI-41 body is written as text, then its bytes and parts are lxml's and the
    tree builder's (MTOM includes, inline base64, an empty document, escaped ids)."""
    tree, text, tree_parts, text_parts = both_pnr(spec, documents, optimise)
    assert text == tree
    assert text_parts == tree_parts


def test_submit_objects_text_is_what_lxml_writes():
    """If the ITI-42 body is written as text, then its bytes are lxml's."""
    spec = submission(2, folder=True)
    assert submit_objects_request_bytes(spec, counter_ids()) == etree.tostring(
        submit_objects_request(spec, counter_ids()), encoding="UTF-8")


@settings(max_examples=200, deadline=None)
@given(action=_XML_TEXT, to=_XML_TEXT, message_id=_XML_TEXT)
def test_request_envelope_text_is_what_lxml_writes(action, to, message_id):
    """If the envelope is written as text around a serialised body, then its bytes are
    those of the tree (markup characters, quotes and line ends in the headers escaped)."""
    body, _ = provide_and_register_request(submission(), {"Document01": b"x"})
    serialised = etree.tostring(body, encoding="UTF-8")
    tree = to_bytes(request_envelope(action, body, to=to, message_id=message_id or "urn:m"))
    assert request_envelope_bytes(action, serialised, to, message_id or "urn:m") == tree


@pytest.mark.parametrize("bad", ["\x00", "a\x01b", "\ufffe"])
def test_a_header_xml_cannot_carry_is_refused(bad):
    """If an address holds a character XML cannot carry, then the envelope is refused, as
    lxml refuses to build it."""
    with pytest.raises(ValueError):
        request_envelope_bytes(ACTION_PNR, b"<a/>", "http://h/" + bad, "urn:m")


def test_the_text_envelope_parses_to_the_request():
    """If the text request is read back, then it is a SOAP 1.2 request with its headers."""
    from xds.soap.envelope import parse_envelope
    body, _ = provide_and_register_bytes(replace(submission()), {"Document01": b"x"})
    message = parse_envelope(request_envelope_bytes(ACTION_PNR, body, "http://h/r", "urn:m"))
    assert (message.action, message.message_id, message.to) == (ACTION_PNR, "urn:m", "http://h/r")
    assert message.body.tag == "{urn:ihe:iti:xds-b:2007}ProvideAndRegisterDocumentSetRequest"
