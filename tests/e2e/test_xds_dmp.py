"""
The xds destination's ``dmp:`` and ``affinity_domain:`` end to end, on loopback, with the real
engine and its identity index (engine.yaml ``identity:``):

- an ORU^R01 over MLLP for a patient whose local id (PID-3, CHU-EXEMPLE) the index links to a
  qualified INS: the ``xds`` destination with ``dmp:`` sends to a stand-in DMP
  (tests/xds/dmp/test_loopback.py's, trusting only the test CA), which verifies the VIHF and
  the XAdES signature of the submission set and sees the INS as patientId; the delivery SENT;
- a patient whose INS the index holds only as VALI: the delivery in ERROR at once, with
  ``XDSRegistryMetadataError`` and the status named, nothing sent to the DMP;
- a plain ``xds`` destination with ``affinity_domain:`` toward the built-in registry (a second
  engine): the patientId registered is the territory's identifier, found back with ITI-18.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from twisted.internet import defer, reactor, threads
from twisted.trial import unittest
from twisted.web import server

from engine import status as st
from identity.model import (
    INS, INS_NIR, IdentifierDomain, IdentityStatus, LocalIdentifier, Sex, Traits)
from identity.store.service import StoreIdentityIndex
from tests.dbs import open_database
from tests.e2e import harness as h
from tests.e2e.shared_record_support import REPOSITORY
from tests.xds.dmp.pki import STRUCTURE_ID, pki
from tests.xds.dmp.test_loopback import StandInDMP
from tests.xds.dmp.verifier import NS
from tests.standards import standards_dir
from tests.xds.http_fixtures import http_sender
from xds.client.queries import find_documents, read_found_documents
from xds.client.transactions import XDSClient
from xds.metadata.reading import read_submission
from xds.metadata.vocabulary import STATUS_APPROVED

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CHU = IdentifierDomain("1.2.250.1.999.1.1", "CHU-EXEMPLE")
TERRITORY = IdentifierDomain("1.2.250.1.999.9.1", "TERRITOIRE", "PI")
MATRICULE = "285076311304523"  # the sample's INS-NIR
OTHER_MATRICULE = "279035121518989"
INS_PATIENT_ID = f"{MATRICULE}^^^&{INS_NIR.oid}&ISO^NH"
FAST_RETRY = {"max_attempts": 30, "initial_delay": "200ms", "max_delay": "500ms"}
# DMP value sets (JDV): class "11" Compte rendu, practice setting, facility type
METADATA = {"class-code": {"code": "11", "scheme": "1.2.250.1.213.1.1.4.1",
                           "display": "Compte rendu"},
            "practice-setting-code": {"code": "ETABLISSEMENT", "scheme": "1.2.250.1.213.1.1.4.9",
                                      "display": "Etablissement de santé"},
            "healthcare-facility-code": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4",
                                         "display": "Etablissement public de santé"}}


def oru(local_id: str = "00451203") -> bytes:
    """The sample ORU for the patient ``local_id`` of CHU-EXEMPLE (its own MSH-10)."""
    return (SAMPLES / "oru" / "r01-biochemistry.hl7").read_bytes().replace(
        b"00451203^^^CHU", f"{local_id}^^^CHU".encode()).replace(
        b"|SIL240312007811|", f"|SIL{local_id}|".encode())


class RecordingDMP(StandInDMP):
    """The stand-in DMP, keeping the patientId and the VIHF's resource-id of each request."""

    def __init__(self, ca_pem):
        super().__init__(ca_pem)
        self.patient_ids: list[str] = []
        self.vihf_patients: list[str] = []

    def _check(self, envelope, attachments) -> None:
        body = envelope.find(f"{{{NS['soap']}}}Body")[0]
        self.patient_ids.append(read_submission(body).submission_sets[0].patient_id)
        assertion = envelope.find(f".//{{{NS['saml2']}}}Assertion")
        self.vihf_patients += [value.text for value in assertion.iter(
            f"{{{NS['saml2']}}}AttributeValue") if value.text and MATRICULE in value.text]
        super()._check(envelope, attachments)


class DMPWiringCase(h.EngineCase):

    def dmp_block(self) -> dict:
        folder = self.directory / "channels" / "dmp"
        folder.mkdir(parents=True, exist_ok=True)
        self.pki_paths = pki().write(folder)
        shutil.copytree(standards_dir() / "terminology" / "ans-jdv", folder / "jdv")
        return {"certificate": "dmp/structure.pem", "key": "dmp/structure.key",
                "structure_id": STRUCTURE_ID,
                "activity_sector": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4",
                                    "display": "Etablissement public de santé"},
                "software": {"name": "Aiguillage", "version": "0.1.0",
                             "homologation": "HOMOLOG-TEST-1"},
                "practitioner": {"identifier": "801234567897", "name": "DAVID Charles",
                                 "roles": [{"code": "10", "scheme": "1.2.250.1.213.1.1.4.5",
                                            "display": "Médecin"}]},
                "value_sets": "dmp/jdv"}

    def write_config(self, destination: dict) -> str:
        (self.directory / "channels").mkdir(exist_ok=True)
        channel = {"name": "lab", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                   "tables": {"lab-loinc": str(SAMPLES / "tables" / "lab-loinc.csv")},
                   "transform": {"name": "oru-to-cda", "loinc-table": "lab-loinc",
                                 "custodian-oid": "1.2.250.1.999.1"},
                   "destinations": [{"type": "xds", "timeout": "10s", "retry": FAST_RETRY,
                                     "source_id": "1.2.250.1.999.1.7", "metadata": METADATA,
                                     **destination}]}
        (self.directory / "channels" / "lab.yaml").write_text(yaml.safe_dump(channel))
        engine_yaml = {"node": "aiguillage", "store": {"url": self.store_url},
                       "channels": ["channels/*.yaml"], "log_level": "warning",
                       "identity": {"domains": [
                           {"namespace": CHU.namespace, "oid": CHU.oid},
                           {"namespace": TERRITORY.namespace, "oid": TERRITORY.oid}]}}
        path = self.directory / "engine.yaml"
        path.write_text(yaml.safe_dump(engine_yaml))
        return str(path)

    @defer.inlineCallbacks
    def start(self, destination: dict):
        self.engine = yield h.start_engine(self.write_config(destination))
        self.addCleanup(self.engine.stop)

    def register(self, local_id: str, status: IdentityStatus, *others: LocalIdentifier):
        """The index knows the patient by ``local_id`` with an INS at ``status``: the sample's
        patient for 00451203, someone else (no link between them) for another id."""
        index = StoreIdentityIndex(self.engine.store)
        if local_id == "00451203":
            traits = Traits("LEFÈVRE", ("Hélène",), "19850714", Sex.FEMALE,
                            ins=INS(MATRICULE, INS_NIR, status))
        else:
            traits = Traits("DUBOIS", ("Dominique",), "19790328", Sex.FEMALE,
                            ins=INS(OTHER_MATRICULE, INS_NIR, status))
        return threads.deferToThread(index.register, [LocalIdentifier(CHU, local_id), *others],
                                     traits, cause="operator:test")

    @defer.inlineCallbacks
    def deliveries(self, status: str, count: int = 1):
        from engine.store import queries
        found, seen = [], []

        def read(conn):
            messages = queries.list_messages(conn, channel="lab")
            seen[:] = [(m["status"], m.get("error") or m.get("detail")) for m in messages]
            return [d for m in messages
                    for d in queries.message_detail(conn, m["id"])["deliveries"]]

        @defer.inlineCallbacks
        def check():
            every = yield self.engine.store.read(read)
            found[:] = [d for d in every if d["status"] == status]
            seen.extend((d["status"], d["last_error"]) for d in every)
            return len(found) >= count
        try:
            yield h.wait_until(check, 60, f"{count} lab deliveries {status}")
        except AssertionError as error:
            raise AssertionError(f"{error}; messages and deliveries: {seen}") from None
        return found

    def stand_in_dmp(self) -> tuple[RecordingDMP, str]:
        dmp = RecordingDMP(None)
        port = reactor.listenTCP(0, server.Site(dmp), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return dmp, f"http://127.0.0.1:{port.getHost().port}/repository"

    # -- the tests ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_a_qualified_ins_goes_to_the_dmp_signed(self):
        """If the index links PID-3 to a qualified INS, the stand-in DMP (trusting only the
        test CA) accepts both signatures and sees the INS as patientId and in the VIHF; a
        patient whose INS is only VALI is refused before anything is sent, for good."""
        dmp, url = self.stand_in_dmp()
        block = self.dmp_block()
        dmp.ca_pem = self.pki_paths["ca"]
        yield self.start({"name": "dmp", "url": url, "dmp": block})
        yield self.register("00451203", IdentityStatus.QUALIFIED)
        yield self.register("00451299", IdentityStatus.VALIDATED)
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        sent = yield self.deliveries(st.SENT)
        self.assertIn(b"ResponseStatusType:Success", bytes(sent[0]["response"]))
        self.assertEqual((dmp.refusals, dmp.patient_ids), ([], [INS_PATIENT_ID]))
        self.assertTrue(dmp.vihf_patients)

        yield h.send_over(self.engine.source_port("lab"), [oru("00451299")])
        [refused] = yield self.deliveries(st.ERROR)
        self.assertEqual(refused["attempts"], 1)
        self.assertIn("XDSRegistryMetadataError", refused["last_error"])
        self.assertIn("not qualified: identity status VALI (validée)", refused["last_error"])
        self.assertEqual(len(dmp.patient_ids), 1)  # nothing more reached the DMP

    @defer.inlineCallbacks
    def test_the_affinity_domain_rewrites_the_patient_id_in_the_registry(self):
        """If affinity_domain is TERRITOIRE, the built-in registry holds the document under
        the territory's identifier of the patient, and FindDocuments finds it by that id;
        a patient with no territory identifier is refused for good."""
        port = self.reserved_port()
        directory = self.directory / "registry"
        directory.mkdir()
        config = {"node": "registry", "log_level": "warning", "channels": [],
                  "store": {"url": open_database(self, self.backend)},
                  "shared_record": {"listen": f"127.0.0.1:{port}",
                                    "repository_unique_id": REPOSITORY}}
        (directory / "engine.yaml").write_text(yaml.safe_dump(config))
        registry = yield h.start_engine(str(directory / "engine.yaml"))
        self.addCleanup(registry.stop)
        base = f"http://127.0.0.1:{port}/xds"
        yield self.start({"name": "territory", "url": base + "/repository",
                          "affinity_domain": "TERRITOIRE"})
        yield self.register("00451203", IdentityStatus.VALIDATED,
                            LocalIdentifier(TERRITORY, "T-000042"))
        yield self.register("00451299", IdentityStatus.VALIDATED)
        yield h.send_over(self.engine.source_port("lab"), [oru()])
        yield self.deliveries(st.SENT)
        client = XDSClient(http_sender(self, timeout=30), registry_url=base + "/registry")
        territory_id = f"T-000042^^^&{TERRITORY.oid}&ISO"
        found = yield client.stored_query(find_documents(territory_id, [STATUS_APPROVED]))
        status, entries = read_found_documents(found)
        self.assertEqual([e.patient_id for e in entries], [territory_id])
        local = yield client.stored_query(find_documents(f"00451203^^^&{CHU.oid}&ISO",
                                                         [STATUS_APPROVED]))
        self.assertEqual(read_found_documents(local)[1], [])

        yield h.send_over(self.engine.source_port("lab"), [oru("00451299")])
        [refused] = yield self.deliveries(st.ERROR)
        self.assertEqual(refused["attempts"], 1)
        self.assertIn("XDSUnknownPatientId", refused["last_error"])
        self.assertIn("has no identifier in the affinity domain TERRITOIRE", refused["last_error"])


class SQLiteDMPWiringTests(DMPWiringCase, unittest.TestCase):
    timeout = 180
    backend = "sqlite"


class PostgreSQLDMPWiringTests(DMPWiringCase, unittest.TestCase):
    timeout = 180
    backend = "postgresql"
