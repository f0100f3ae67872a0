"""Hostile XML is refused before anything is expanded, read or fetched."""
from __future__ import annotations

import socket

import pytest
from lxml import etree

from xds.safexml import UnsafeXMLError, parse_xml, safe_parser, to_bytes

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


@pytest.fixture
def listener():
    """A loopback TCP listener, to prove that nothing connects to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


def hostile_documents(tmp_path, port: int) -> dict[str, bytes]:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    url = f"http://127.0.0.1:{port}"
    return {
        "billion laughs": BILLION_LAUGHS,
        "external file entity": (f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
                                 "<r>&x;</r>").encode(),
        "external http entity": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/e">]><r>&x;</r>'.encode(),
        "external DTD": f'<!DOCTYPE r SYSTEM "{url}/r.dtd"><r/>'.encode(),
        "parameter entity": (f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>'
                             "<r/>").encode(),
        "public DTD": (b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
                       b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>'),
        "internal DTD only": b"<!DOCTYPE r [<!ELEMENT r ANY>]><r/>",
    }


@pytest.mark.parametrize("name", ["billion laughs", "external file entity", "external http entity",
                                  "external DTD", "parameter entity", "public DTD",
                                  "internal DTD only"])
def test_document_type_declarations_are_refused(name, tmp_path, listener):
    """If a document declares a DTD, then it is refused with a message naming the DTD,
    and no file or URL it names is read."""
    data = hostile_documents(tmp_path, listener.getsockname()[1])[name]
    with pytest.raises(UnsafeXMLError, match="declares a DTD") as caught:
        parse_xml(data, what="SOAP envelope")
    assert "SOAP envelope" in str(caught.value)
    assert "TOP-SECRET" not in str(caught.value)
    assert_no_connection(listener)


@pytest.mark.parametrize("name", ["external file entity", "external http entity", "external DTD",
                                  "parameter entity", "public DTD"])
def test_parser_asks_for_no_external_resource(name, tmp_path, listener):
    """If libxml2 wanted any external resource while parsing, then lxml would ask the parser's
    resolvers first; none is asked, so nothing was fetched (even before the DTD check)."""
    asked = []

    class Recorder(etree.Resolver):
        def resolve(self, url, pubid, context):
            asked.append(url)
            return self.resolve_string("", context)

    parser = safe_parser()
    parser.resolvers.add(Recorder())
    root = etree.fromstring(hostile_documents(tmp_path, listener.getsockname()[1])[name], parser)
    assert asked == []
    assert b"TOP-SECRET" not in etree.tostring(root)


def test_billion_laughs_is_not_expanded_by_the_parser_itself():
    """If the parser expanded entities, then the text would be 10^9 'lol's; libxml2 stops at
    the declarations instead, or leaves the reference unexpanded."""
    try:
        root = etree.fromstring(BILLION_LAUGHS, safe_parser())
    except etree.XMLSyntaxError as exc:
        assert "amplification" in str(exc)
    else:
        assert "lol" not in "".join(root.itertext())


def test_undeclared_entity_is_refused():
    """If a document uses an entity that nothing declares, then it is not well-formed."""
    with pytest.raises(UnsafeXMLError, match="not well-formed"):
        parse_xml(b"<r>&x;</r>")


def test_size_limit_is_checked_before_parsing():
    """If the input is over the limit, then it is refused with both sizes in the message."""
    with pytest.raises(UnsafeXMLError, match="2001 bytes, over the 2000-byte limit"):
        parse_xml(b"<r>" + b"a" * 1994 + b"</r>", max_bytes=2000)
    assert parse_xml(b"<r>" + b"a" * 1993 + b"</r>", max_bytes=2000).tag == "r"


def test_huge_text_nodes_are_refused_by_libxml2_limits():
    """If huge_tree were on, then a text node over libxml2's 10 MB limit would be accepted."""
    with pytest.raises(UnsafeXMLError, match="not well-formed"):
        parse_xml(b"<r>" + b"a" * (10_000_001) + b"</r>")


def test_truncated_and_malformed_documents_are_refused():
    """If the document is cut short, then the error says it is not well-formed."""
    with pytest.raises(UnsafeXMLError, match="CDA document is not well-formed"):
        parse_xml(b"<ClinicalDocument><id", what="CDA document")


def test_text_is_refused_so_the_encoding_declaration_is_honoured():
    """If a str were accepted, then an encoding declaration would be ignored or fail later."""
    with pytest.raises(TypeError):
        parse_xml("<r/>")


def test_iso_8859_1_document_is_read_with_its_declared_encoding():
    """If the declaration says ISO-8859-1, then é is read as é."""
    root = parse_xml('<?xml version="1.0" encoding="ISO-8859-1"?><r>é</r>'.encode("latin-1"))
    assert root.text == "é"


def test_round_trip_through_to_bytes():
    """If Aiguillage writes XML, then it is UTF-8 with a declaration and parses back."""
    data = to_bytes(parse_xml("<r a='é'/>".encode()))
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert parse_xml(data).get("a") == "é"
