"""What the shared record's end-to-end tests share: engine.yaml with a ``shared_record:``
section, the IHE samples as a client would send them (inline, or hand-built MTOM), raw HTTP
POSTs, answers read and validated against the official schemas, and a zeep client.

The samples come from the shared standards folder (tests/standards.py). The IHE ITI-41
sample carries one known fault, a submission set sourceId that is no OID ("3670984664",
see tests/xds/test_conformance.py); :func:`sample_pnr` corrects that one value and nothing
else, unless asked to keep it.
"""
from __future__ import annotations

import base64
import io
import re
import uuid
from pathlib import Path
from string import Template
from typing import Any

import yaml
from lxml import etree
from twisted.internet import defer, protocol, reactor
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers

from tests.e2e.harness import EngineCase, start_engine
from tests.standards import sample, standards_dir
from tests.xds.standards import XML_XSD_URL, assert_valid
from xds.namespaces import XDS, XOP, qname
from xds.safexml import parse_xml
from xds.soap.envelope import parse_envelope, read_fault
from xds.soap.response import read_registry_response
from xds.soap.mtom import read_mtom, strip_cid

REPOSITORY = "1.2.250.1.999.7.1"
SAMPLE_PNR = "xds/examples/ihe/ProvideAndRegisterDocumentSet-bRequest_SOAP.xml"
SAMPLE_RETRIEVE = "xds/examples/ihe/RetrieveDocumentSetRequest_SOAP.xml"
FAULTY_SOURCE_ID = b'value="3670984664"'
SOURCE_ID = b'value="1.3.6.1.4.1.21367.2005.3.7"'
SAMPLE_PATIENT = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
SAMPLE_DOCUMENT_UNIQUE_ID = "1.3.6.1.4.1.21367.2005.3.9999.32"
SAMPLE_SUBMISSION_SET_UNIQUE_ID = "1.3.6.1.4.1.21367.2005.3.9999.33"
SOAP_XML = "application/soap+xml; charset=UTF-8"
_INLINE_DOCUMENT = re.compile(rb'<Document id="Document01">([^<]*)</Document>')
WSDL = Path(__file__).resolve().parents[1] / "xds" / "registry.wsdl"


def write_engine_yaml(directory: Path, store_url: str, **shared: Any) -> str:
    """engine.yaml serving the shared record on 127.0.0.1 port 0, no channel; its path."""
    section = {"listen": "127.0.0.1:0", "repository_unique_id": REPOSITORY, **shared}
    config = {"node": "e2e", "store": {"url": store_url}, "log_level": "warning",
              "channels": [], "shared_record": section}
    path = Path(directory) / "engine.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


# -- the IHE samples as requests -------------------------------------------------------------

def sample_pnr(*, keep_source_id: bool = False) -> bytes:
    """The IHE ITI-41 sample envelope, byte for byte but for its sourceId (unless kept)."""
    data = sample(SAMPLE_PNR).read_bytes()
    assert data.count(FAULTY_SOURCE_ID) == 1
    return data if keep_source_id else data.replace(FAULTY_SOURCE_ID, SOURCE_ID)


def sample_document() -> bytes:
    """The bytes of the sample's one document (base64 in its envelope)."""
    return base64.b64decode(_INLINE_DOCUMENT.search(sample_pnr()).group(1))


def with_hash(envelope: bytes, sha1: str) -> bytes:
    """*envelope* whose DocumentEntry carries a ``hash`` slot of *sha1*."""
    opening = re.search(rb'<rim:ExtrinsicObject id="Document01"[^>]*>', envelope)
    slot = (b'<rim:Slot name="hash"><rim:ValueList><rim:Value>' + sha1.encode()
            + b"</rim:Value></rim:ValueList></rim:Slot>")
    return envelope[:opening.end()] + slot + envelope[opening.end():]


def as_mtom(envelope: bytes, document: bytes | None = None, *,
            closed: bool = True) -> tuple[str, bytes]:
    """(Content-Type, body) of *envelope* sent as MTOM, written by hand as another vendor's
    client would: the inline Document becomes an xop:Include of a binary MIME part holding
    *document* (default: the inline bytes). ``closed=False`` leaves out the closing
    boundary: a MIME part that never ends."""
    inline = _INLINE_DOCUMENT.search(envelope)
    data = base64.b64decode(inline.group(1)) if document is None else document
    root = (envelope[:inline.start()] + b'<Document id="Document01"><xop:Include xmlns:xop="'
            + XOP.encode() + b'" href="cid:document01@sample.example"/></Document>'
            + envelope[inline.end():])
    boundary = "MIMEBoundary_" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
            f'type="application/soap+xml"\r\nContent-Transfer-Encoding: binary\r\n'
            f"Content-ID: <root@sample.example>\r\n\r\n").encode() + root + \
        (f"\r\n--{boundary}\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: binary\r\n"
         f"Content-ID: <document01@sample.example>\r\n\r\n").encode() + data
    body += f"\r\n--{boundary}--\r\n".encode() if closed else b"\r\n"
    content_type = (f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
                    f'start="<root@sample.example>"; start-info="application/soap+xml"')
    return content_type, body


def sample_retrieve(*document_unique_ids: str, repository: str = REPOSITORY) -> bytes:
    """The IHE ITI-43 sample envelope asking *repository* for these documents."""
    data = sample(SAMPLE_RETRIEVE).read_bytes()
    requests = list(re.finditer(rb"\s*<DocumentRequest>.*?</DocumentRequest>", data, re.S))
    template = requests[0].group(0)
    asked = b"".join(
        template.replace(b"1.3.6.1.4...1000", repository.encode())
        .replace(b"1.3.6.1.4...2300", unique_id.encode()) for unique_id in document_unique_ids)
    return data[:requests[0].start()] + asked + data[requests[-1].end():]


def mtom_envelope(envelope: bytes) -> tuple[str, bytes]:
    """An envelope with no attachment, sent as MTOM (so that the answer comes as MTOM)."""
    boundary = "MIMEBoundary_" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
            f'type="application/soap+xml"\r\nContent-ID: <root@sample.example>\r\n\r\n'
            ).encode() + envelope + f"\r\n--{boundary}--\r\n".encode()
    return (f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
            f'start="<root@sample.example>"; start-info="application/soap+xml"'), body


# -- HTTP ------------------------------------------------------------------------------------

class Answer:
    """A whole HTTP answer: status, Content-Type and body, read as SOAP on demand."""

    def __init__(self, status: int, content_type: str, data: bytes):
        self.status, self.content_type, self.data = status, content_type, data
        self.attachments: dict[str, bytes] = {}
        if content_type.startswith("multipart/related"):
            package = read_mtom(content_type, data)
            self.root = package.root
            self.attachments = {cid: part.read_bytes()
                                for cid, part in package.attachments.items()}
            package.close()
        else:
            self.root = data
        self.message = parse_envelope(self.root)

    @property
    def body(self) -> etree._Element:
        return self.message.body

    @property
    def fault(self):
        return read_fault(self.body)

    def assert_valid(self, schema_name: str) -> None:
        """The envelope valid against SOAP 1.2's schema and its Body's element against
        *schema_name*'s (tests/xds/standards.py), xop:Includes put back as base64 first."""
        root = parse_xml(self.root)
        for include in list(root.iter(qname(XOP, "Include"))):
            holder = include.getparent()
            holder.remove(include)
            data = self.attachments[strip_cid(include.get("href"))]
            holder.text = base64.b64encode(data).decode("ascii")
        assert_valid("soap", root)
        body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
        assert_valid(schema_name, body[0])


class _Collect(protocol.Protocol):
    def __init__(self, done: defer.Deferred):
        self.done, self.data = done, []

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def connectionLost(self, reason: Any) -> None:
        self.done.callback(b"".join(self.data))


@defer.inlineCallbacks
def post(url: str, body: bytes, content_type: str = SOAP_XML, agent: Any = None) -> Any:
    """POST raw bytes; Deferred[Answer]. The connection is not kept alive."""
    agent = agent or Agent(reactor)
    response = yield agent.request(b"POST", url.encode(), Headers(
        {b"Content-Type": [content_type.encode()], b"Connection": [b"close"]}),
        FileBodyProducer(io.BytesIO(body)))
    done: defer.Deferred = defer.Deferred()
    response.deliverBody(_Collect(done))
    data = yield done
    answer_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0].decode()
    return Answer(response.code, answer_type, data)


def retrieved_document(answer: Answer) -> tuple[str, bytes]:
    """(DocumentUniqueId, bytes) of the one document of an ITI-43 answer, either form."""
    [response] = answer.body.findall(qname(XDS, "DocumentResponse"))
    holder = response.find(qname(XDS, "Document"))
    include = holder.find(qname(XOP, "Include"))
    data = (answer.attachments[strip_cid(include.get("href"))] if include is not None
            else base64.b64decode(holder.text))
    return response.findtext(qname(XDS, "DocumentUniqueId")), data


# -- zeep ------------------------------------------------------------------------------------

def zeep_registry(tmp: Path, address: str):
    """(service, captured answers) of a zeep client of the registry at *address*, built
    from tests/xds/registry.wsdl and the official ebRS schemas, offline (blocking: run it
    in a thread). Every answer's envelope is kept in *captured* for schema checks."""
    import requests
    import zeep
    from zeep.wsa import WsAddressingPlugin

    schemas = standards_dir() / "xds" / "schema"
    captured: list[etree._Element] = []

    class OfflineTransport(zeep.Transport):
        def load(self, url):
            if url == XML_XSD_URL:
                url = str(schemas / "xml.xsd")
            if "://" in url:
                raise AssertionError(f"zeep tried to fetch {url}")
            return super().load(url)

    class Capture(zeep.Plugin):
        def ingress(self, envelope, http_headers, operation):
            captured.append(etree.fromstring(etree.tostring(envelope)))
            return envelope, http_headers

    wsdl = tmp / "registry.wsdl"
    wsdl.write_text(Template(WSDL.read_text()).substitute(schemas=schemas))
    session = requests.Session()
    session.headers["Connection"] = "close"
    # strict=False: zeep does not implement the substitution group by which
    # rim:ExtrinsicObject stands for rim:Identifiable (python-zeep issue #321); such
    # elements come back as lxml elements in _raw_elements.
    client = zeep.Client(str(wsdl), transport=OfflineTransport(session=session),
                         plugins=[WsAddressingPlugin(), Capture()],
                         settings=zeep.Settings(strict=False))
    return client.create_service("{urn:ihe:iti:xds-b:2007}RegistryBinding", address), captured


def zeep_query(service, query_id: str, return_type: str = "LeafClass", **slots: list[str]):
    """A stored query as a zeep user writes it; each slot's values are already quoted."""
    def slot(name, values):
        # rim:ValueListType is a repeated sequence: zeep names it _value_1.
        return {"name": name, "ValueList": {"_value_1": [{"Value": v} for v in values]}}
    return service.RegistryStoredQuery(
        ResponseOption={"returnType": return_type, "returnComposedObjects": True},
        AdhocQuery={"id": query_id, "Slot": [slot(f"${name}", values)
                                             for name, values in slots.items()]})


def raw_objects(response) -> list[tuple[str, etree._Element]]:
    """(local name, element) of each object of a zeep AdhocQueryResponse."""
    if response.RegistryObjectList is None:  # zeep reads an empty list as None
        return []
    return [(etree.QName(element).localname, element)
            for element in response.RegistryObjectList._raw_elements]


# -- the test-case base ------------------------------------------------------------------

class SharedRecordCase(EngineCase):
    """Mixin for trial test cases: a started engine serving the shared record;
    :attr:`repository` and :attr:`registry` are its endpoints' URLs."""

    @defer.inlineCallbacks
    def serve(self, **shared):
        standards_dir()
        self.config_path = write_engine_yaml(self.directory, self.store_url, **shared)
        self.engine = yield start_engine(self.config_path)
        self.addCleanup(self.engine.stop)
        base = self.engine.shared_record.base_url
        self.repository, self.registry = base + "/repository", base + "/registry"

    @defer.inlineCallbacks
    def provide(self, body: bytes, content_type: str = "application/soap+xml"):
        """POST an ITI-41 request; its read, schema-checked RegistryResponse."""
        answer = yield post(self.repository, body, content_type)
        self.assertEqual(answer.status, 200, answer.data[:300])
        answer.assert_valid("rs")
        return read_registry_response(answer.body)
