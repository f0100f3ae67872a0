"""A SOAP client no one here wrote — zeep — sends an ITI-18 stored query to Aiguillage's
registry endpoint over loopback HTTP and reads the AdhocQueryResponse.

zeep learns the messages from tests/xds/registry.wsdl, which imports the official ebRS
schemas from the shared standards folder (skipped outside CI when it is absent). Its
transport reads those files and the W3C xml.xsd locally and refuses any other URL, so the
test never touches the network. zeep is blocking, so it runs in a thread while the reactor
serves.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from string import Template

from lxml import etree
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from tests.xds.builders import PATIENT, submission
from tests.xds.fakes import InMemoryXDSHandler
from tests.xds.http_fixtures import listen, xds_site
from tests.standards import standards_dir
from tests.xds.standards import XML_XSD_URL
from xds.metadata.vocabulary import RESPONSE_SUCCESS

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
WSDL = Path(__file__).with_name("registry.wsdl")


def zeep_service(tmp: Path, address: str):
    """A zeep service proxy for the registry at *address* (blocking: run it in a thread)."""
    import requests
    import zeep
    from zeep.wsa import WsAddressingPlugin

    schemas = standards_dir() / "xds" / "schema"

    class OfflineTransport(zeep.Transport):
        def load(self, url):
            if url == XML_XSD_URL:
                url = str(schemas / "xml.xsd")
            if "://" in url:
                raise AssertionError(f"zeep tried to fetch {url}")
            return super().load(url)

    wsdl = tmp / "registry.wsdl"
    wsdl.write_text(Template(WSDL.read_text()).substitute(schemas=schemas))
    # zeep does not implement XSD substitution groups (python-zeep issue #321), by which
    # rim:ExtrinsicObject stands for rim:Identifiable in a RegistryObjectList: non-strict
    # mode hands such elements over as lxml elements in _raw_elements.
    session = requests.Session()
    session.headers["Connection"] = "close"  # no keep-alive left over when the test ends
    client = zeep.Client(str(wsdl), transport=OfflineTransport(session=session),
                         plugins=[WsAddressingPlugin()], settings=zeep.Settings(strict=False))
    return client.create_service("{urn:ihe:iti:xds-b:2007}RegistryBinding", address)


def find_documents(service, patient_id: str):
    """Call FindDocuments for *patient_id* the way a zeep user would."""
    def slot(name, *values):
        # rim:ValueListType is a repeated sequence: zeep names it _value_1.
        return {"name": name, "ValueList": {"_value_1": [{"Value": v} for v in values]}}
    return service.RegistryStoredQuery(
        ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
        AdhocQuery={"id": FIND_DOCUMENTS, "Slot": [
            slot("$XDSDocumentEntryPatientId", f"'{patient_id}'"),
            slot("$XDSDocumentEntryStatus", f"('{APPROVED}')")]})


class ZeepStoredQueryTests(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def serve(self):
        """The in-memory registry holding one submission, and a zeep service calling it."""
        standards_dir()
        self.handler = InMemoryXDSHandler()
        self.handler.submissions.append(submission())
        base = yield listen(self, xds_site(self.handler))
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        service = yield deferToThread(zeep_service, tmp, base + "/registry")
        return service

    @defer.inlineCallbacks
    def test_zeep_finds_the_registered_document(self):
        """If the endpoint misread zeep's envelope or wrote a response zeep cannot read,
        then the call would fail or find nothing."""
        service = yield self.serve()
        response = yield deferToThread(find_documents, service, PATIENT)
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        found = response.RegistryObjectList._raw_elements
        self.assertEqual([(etree.QName(e).localname, e.get("id")) for e in found],
                         [("ExtrinsicObject", "Document01")])
        self.assertEqual(self.handler.calls, ["stored_query"])

    @defer.inlineCallbacks
    def test_zeep_gets_an_empty_list_for_another_patient(self):
        """If the query's slot were not read from zeep's request, the document would come back."""
        service = yield self.serve()
        response = yield deferToThread(find_documents, service, "other^^^&1.2.3&ISO")
        self.assertEqual(response.status, RESPONSE_SUCCESS)
        # zeep reads an empty rim:RegistryObjectList as None.
        self.assertIsNone(response.RegistryObjectList)
