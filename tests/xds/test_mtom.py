"""MTOM/XOP: streaming, bounded reading at every chunk size, writing, and ITI-41 documents."""
from __future__ import annotations

import hashlib
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.xds.builders import DOCUMENT_BYTES, counter_ids, submission
from xds.metadata import errors as codes
from xds.metadata.content import check_documents
from xds.metadata.validation import validate
from xds.metadata.vocabulary import ACTION_PNR
from xds.safexml import to_bytes
from xds.soap.documents import (
    InlineDocument, provide_and_register_request, read_provide_and_register,
)
from xds.soap.envelope import parse_envelope, request_envelope
from xds.soap.mtom import (
    MTOMError, MTOMLimits, MTOMReader, OutgoingPart, content_type_params, read_mtom, write_mtom,
)

PDF = b"%PDF-1.4\r\n--not-a-boundary\r\n" + bytes(range(256)) * 8


def message(parts=None, root=b"<root/>", boundary="b0undary"):
    parts = parts if parts is not None else [OutgoingPart("doc1@x", "application/pdf", PDF)]
    content_type, chunks = write_mtom(root, parts, ACTION_PNR, boundary=boundary)
    return content_type, b"".join(chunks)


def feed(content_type: str, body: bytes, size: int, limits=MTOMLimits()):
    reader = MTOMReader(content_type, limits)
    for start in range(0, len(body), size):
        reader.feed(body[start:start + size])
    return reader.close()


def test_every_chunk_size_gives_the_same_package():
    """If the body arrives in chunks of any size from 1 to its length, then the root and the
    attachment (bytes, size, SHA-1) are the same."""
    content_type, body = message()
    for size in range(1, len(body) + 1, 7):
        package = feed(content_type, body, size)
        assert package.root == b"<root/>"
        attachment = package.attachments["doc1@x"]
        assert attachment.read_bytes() == PDF
        assert (attachment.size, attachment.sha1) == (len(PDF), hashlib.sha1(PDF).hexdigest())
        assert attachment.content_type == "application/pdf"


def test_content_type_header_follows_appendix_v():
    """If a message is written, then its Content-Type names the XOP type, start and action."""
    content_type, body = message()
    assert content_type.startswith('multipart/related; boundary="b0undary"; '
                                   'type="application/xop+xml"; start="<')
    assert 'start-info="application/soap+xml"' in content_type
    assert f'action="{ACTION_PNR}"' in content_type
    assert b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"' in body


def test_large_attachment_spools_to_disk_and_streams_out():
    """If an attachment is larger than the spool size, then it goes to a file, and a file source
    is written out in blocks without being read whole."""
    big = b"x" * 300_000
    content_type, body = message([OutgoingPart("big@x", "application/pdf", io.BytesIO(big))])
    package = feed(content_type, body, 65536, MTOMLimits(spool_bytes=1024))
    attachment = package.attachments["big@x"]
    assert attachment.open()._rolled is True
    assert attachment.read_bytes() == big


def test_root_found_by_start_parameter_even_when_not_first():
    """If the start parameter names the second part, then that part is the root."""
    body = (b"\r\n--B\r\nContent-ID: <att@x>\r\n\r\nATT\r\n--B\r\nContent-ID: <root@x>\r\n"
            b"Content-Type: application/xop+xml\r\n\r\n<root/>\r\n--B--\r\n")
    package = read_mtom('multipart/related; boundary=B; start="<root@x>"', body)
    assert package.root == b"<root/>"
    assert package.attachments["att@x"].read_bytes() == b"ATT"


def test_body_that_never_closes_is_refused():
    """If the body stops inside a part (no closing boundary), then the error says so."""
    content_type, body = message()
    with pytest.raises(MTOMError, match="ended before its closing boundary"):
        feed(content_type, body[:-20], 1000)


def test_endless_part_is_stopped_by_the_part_limit():
    """If a part never ends, then reading stops once it passes max_part_bytes, long before
    the stream ends."""
    reader = MTOMReader('multipart/related; boundary=B; start="<r>"',
                        MTOMLimits(max_part_bytes=10_000))
    reader.feed(b"--B\r\nContent-ID: <r>\r\n\r\n<root/>\r\n--B\r\nContent-ID: <a>\r\n\r\n")
    with pytest.raises(MTOMError, match="attachment 2 is over the 10000-byte limit"):
        for _ in range(1000):
            reader.feed(b"z" * 1000)


@pytest.mark.parametrize("limits, fragment", [
    (MTOMLimits(max_root_bytes=5), "root part 1 is over the 5-byte limit"),
    (MTOMLimits(max_part_bytes=100), "attachment 2 is over the 100-byte limit"),
    (MTOMLimits(max_total_bytes=500), "message is over the 500-byte limit"),
    (MTOMLimits(max_parts=1), "more than 1 parts"),
])
def test_limits(limits, fragment):
    """If a message passes any limit, then it is refused with the limit in the message."""
    content_type, body = message()
    with pytest.raises(MTOMError, match=re.escape(fragment)):
        feed(content_type, body, 64, limits)


@pytest.mark.parametrize("content_type, body, fragment", [
    ("text/xml", b"", "not multipart/related"),
    ("multipart/related", b"", "no boundary"),
    ("multipart/related; boundary=B", b"garbage", "malformed multipart body"),
    ("multipart/related; boundary=B",
     b"--B\r\nContent-ID: <r>\r\n\r\nx\r\n--B\r\nContent-Transfer-Encoding: base64\r\n"
     b"Content-ID: <a>\r\n\r\neA==\r\n--B--", "Content-Transfer-Encoding base64"),
    ("multipart/related; boundary=B",
     b"--B\r\nContent-ID: <r>\r\n\r\nx\r\n--B\r\nContent-ID: <a>\r\n\r\n1\r\n--B\r\n"
     b"Content-ID: <a>\r\n\r\n2\r\n--B--", "Content-ID <a> is used by two parts"),
    ("multipart/related; boundary=B",
     b"--B\r\nContent-ID: <r>\r\n\r\nx\r\n--B\r\n\r\n1\r\n--B--", "part 2 has no Content-ID"),
    ("multipart/related; boundary=B",
     b"--B\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20)) + b"\r\nx\r\n--B--",
     "Maximum header count exceeded"),
    ("multipart/related; boundary=B",
     b"--B\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\nx\r\n--B--", "Maximum header size exceeded"),
    ('multipart/related; boundary=B; start="<root>"',
     b"--B\r\nContent-ID: <r>\r\n\r\nx\r\n--B--", "no root part (Content-ID <root>)"),
    ("multipart/related; boundary=B",
     b"--B\r\nContent-ID: <r>\r\nContent-Type: text/html\r\n\r\nx\r\n--B--",
     "root part is text/html, not application/xop+xml"),
    ("multipart/related; boundary=B", b"--B\r\nContent-ID: <r>\r\n\r\nx\r\n--B--",
     "root part is without Content-Type, not application/xop+xml"),
])
def test_malformed_messages(content_type, body, fragment):
    """If the framing is wrong, then MTOMError names the fault."""
    with pytest.raises(MTOMError, match=re.escape(fragment)):
        read_mtom(content_type, body)


def pnr_over_the_wire(optimise: bool, documents=None):
    sub = submission()
    documents = documents or {"Document01": DOCUMENT_BYTES}
    body, parts = provide_and_register_request(sub, documents, optimise=optimise,
                                               new_id=counter_ids())
    root = to_bytes(request_envelope(ACTION_PNR, body, "http://127.0.0.1/xds"))
    content_type, chunks = write_mtom(root, parts, ACTION_PNR)
    package = read_mtom(content_type, b"".join(chunks))
    envelope = parse_envelope(package.root)
    return sub, read_provide_and_register(envelope.body, package.attachments)


@pytest.mark.parametrize("optimise", [True, False])
def test_provide_and_register_both_encodings(optimise):
    """If ITI-41 is sent with XOP attachments or inline base64, then the receiver gets the same
    submission and documents, which pass metadata and content checks."""
    sent, (received, documents) = pnr_over_the_wire(optimise)
    assert received == sent
    assert validate(received) == []
    assert check_documents(received, documents) == []
    assert documents["Document01"].read_bytes() == DOCUMENT_BYTES


def test_mismatched_hash_is_refused():
    """If the bytes sent differ from the hash in the metadata, then XDSRepositoryMetadataError."""
    _, (received, documents) = pnr_over_the_wire(True, {"Document01": b"tampered"})
    errors = check_documents(received, documents)
    assert {e.error_code for e in errors} == {codes.REPOSITORY_METADATA_ERROR}
    assert "does not match the document's SHA-1" in errors[0].code_context


def test_include_to_missing_part_and_bad_base64():
    """If an xop:Include names no part, or inline base64 is broken, then MTOMError names the
    Document."""
    from lxml import etree

    from xds.soap.documents import read_documents
    include = etree.fromstring(
        '<x:D xmlns:x="urn:ihe:iti:xds-b:2007" xmlns:xop="http://www.w3.org/2004/08/xop/include">'
        '<x:Document id="d1"><xop:Include href="cid:nowhere%40x"/></x:Document></x:D>')
    with pytest.raises(MTOMError, match="'d1': no MIME part has Content-ID <nowhere@x>"):
        read_documents(include, {})
    inline = etree.fromstring('<x:D xmlns:x="urn:ihe:iti:xds-b:2007">'
                              '<x:Document id="d2">@@@</x:Document></x:D>')
    with pytest.raises(MTOMError, match="'d2' is not valid base64"):
        read_documents(inline, {})
    big = etree.fromstring('<x:D xmlns:x="urn:ihe:iti:xds-b:2007">'
                           f'<x:Document id="d3">{"QUFB" * 100}</x:Document></x:D>')
    with pytest.raises(MTOMError, match="'d3' is over the 100-byte limit"):
        read_documents(big, {}, max_inline_bytes=100)
    assert isinstance(read_documents(big, {})["d3"], InlineDocument)


def test_response_without_attachments_is_still_mtom():
    """If an ITI-41 response carries no document, then it is still MTOM-framed and reads back."""
    from xds.metadata.vocabulary import response_action
    from xds.soap.envelope import envelope
    from xds.soap.response import read_registry_response, registry_response
    action = response_action(ACTION_PNR)
    root = to_bytes(envelope(action, registry_response([]), relates_to="urn:uuid:1"))
    content_type, chunks = write_mtom(root, [], action)
    package = read_mtom(content_type, b"".join(chunks))
    assert package.attachments == {}
    assert read_registry_response(parse_envelope(package.root).body).succeeded


def test_package_close_releases_attachments():
    """If the package is closed, then its spooled files are closed."""
    content_type, body = message()
    package = read_mtom(content_type, body)
    package.close()
    with pytest.raises(ValueError):
        package.attachments["doc1@x"].read_bytes()


@settings(max_examples=60, deadline=None)
@given(documents=st.lists(st.binary(max_size=3000), min_size=0, max_size=4),
       boundary_noise=st.booleans(), chunk=st.integers(min_value=1, max_value=4096))
def test_any_bytes_any_chunking_round_trip(documents, boundary_noise, chunk):
    """If attachments hold any bytes (even CRLF--boundary-like runs), then whatever the chunk
    size, each comes back identical with its SHA-1."""
    if boundary_noise:
        documents = [d + b"\r\n--MIMEBoundary_x\r\n--" + d for d in documents]
    parts = [OutgoingPart(f"d{i}@x", "application/octet-stream", d)
             for i, d in enumerate(documents)]
    content_type, body = message(parts, boundary="MIMEBoundary_xyz")
    package = feed(content_type, body, chunk)
    assert [package.attachments[f"d{i}@x"].read_bytes() for i in range(len(documents))] == documents
    assert all(package.attachments[f"d{i}@x"].sha1 == hashlib.sha1(d).hexdigest()
               for i, d in enumerate(documents))


def test_content_type_parameters():
    """If a Content-Type's quoted parameter holding ';' and '=' were split there, or its
    parameter names kept their case, then start-info and start would be wrong; a value
    with no type/subtype reads as text/plain (RFC 2045), so it is never taken for MTOM."""
    header = ('Multipart/Related; BOUNDARY="MIME_b; x=1"; type="application/xop+xml";'
              ' start="<root@x>"; start-info="application/soap+xml; action=\\"urn:a\\""')
    mime_type, params = content_type_params(header)
    assert mime_type == "multipart/related"
    assert params == {"boundary": "MIME_b; x=1", "type": "application/xop+xml",
                      "start": "<root@x>", "start-info": 'application/soap+xml; action="urn:a"'}
    params["boundary"] = "changed"       # a caller's copy: the next read is not affected
    assert content_type_params(header)[1]["boundary"] == "MIME_b; x=1"
    assert content_type_params("garbage")[0] == "text/plain"
    assert content_type_params("")[0] == "text/plain"
