"""engine/serve/shared_record.py's listener on loopback, over a store whose answers the test holds:
at stop, a request being answered gets its answer before the connection closes, one whose
body is still arriving is cut, and stop waits for neither longer than its bound."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest
from twisted.web.client import ResponseNeverReceived

from engine.app import Engine, load_config
from engine.config.loader import load_engine_config
from engine.serve.shared_record import SharedRecordService
from tests.e2e.shared_record_support import REPOSITORY, post
from tests.xds.registry_support import adhoc_query
from tests.xds.test_registry_query import FIND_DOCUMENTS
from xds.metadata.vocabulary import ACTION_STORED_QUERY, RESPONSE_SUCCESS
from xds.registry.query import adhoc_query_response
from xds.safexml import to_bytes
from xds.soap.envelope import request_envelope


class HeldStore:
    """``read`` returns a Deferred the test fires: the database is as slow as it says
    (given to the service as its registry's threads)."""

    def __init__(self):
        self.pending: list[defer.Deferred] = []

    def start(self):
        pass

    def stop(self):
        return defer.succeed(None)

    def read(self, query, *args):
        d = defer.Deferred()
        self.pending.append(d)
        return d


def config(tmp_path: Path):
    path = tmp_path / "engine.yaml"
    path.write_text("store: {url: 'sqlite:///s.db'}\nshared_record:\n  listen: 127.0.0.1:0\n"
                    f"  repository_unique_id: {REPOSITORY}\n")
    return load_engine_config(str(path), {}).shared_record


def stored_query(url: str) -> bytes:
    return to_bytes(request_envelope(ACTION_STORED_QUERY, adhoc_query(FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": "1^^^&1.2.3&ISO",
        "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]}),
        url))


class StopTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def start(self):
        self.store = HeldStore()
        self.service = SharedRecordService(config(_tmp(self)), None, reactor,
                                           registry=self.store)
        yield self.service.start()
        self.addCleanup(self.service.stop)
        self.url = self.service.base_url + "/registry"

    @defer.inlineCallbacks
    def wait_for_read(self):
        while not self.store.pending:
            yield _later(0.02)

    @defer.inlineCallbacks
    def test_a_request_being_answered_is_answered_before_stop_closes(self):
        """If stop closed connections at once, then the client would get no answer for a
        transaction that may have committed."""
        yield self.start()
        answer = post(self.url, stored_query(self.url))
        yield self.wait_for_read()
        stopped = self.service.stop()
        yield _later(0.2)
        self.assertFalse(stopped.called)  # waiting for the answer
        self.store.pending[0].callback(adhoc_query_response([], []))
        answered = yield answer
        yield stopped
        self.assertEqual((answered.status, answered.body.get("status")), (200, RESPONSE_SUCCESS))
        self.assertIsNone(self.service.port)

    @defer.inlineCallbacks
    def test_a_request_still_arriving_is_cut_at_stop(self):
        """If stop waited for a body that never ends, then the engine would not stop."""
        yield self.start()
        closed = defer.Deferred()

        class Stalled(protocol.Protocol):
            def connectionMade(self):
                self.transport.write(b"POST /xds/registry HTTP/1.1\r\nHost: x\r\nContent-Type:"
                                     b" application/soap+xml\r\nContent-Length: 5000\r\n\r\n<s")

            def connectionLost(self, reason):
                closed.callback(None)

        yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.service.port).connect(
            protocol.Factory.forProtocol(Stalled))
        yield _later(0.1)
        start = reactor.seconds()
        yield self.service.stop()
        yield closed
        self.assertLess(reactor.seconds() - start, self.service.drain_seconds)

    @defer.inlineCallbacks
    def test_stop_is_bounded_when_an_answer_never_comes(self):
        """If a database that never answers held stop, then the engine could not stop."""
        yield self.start()
        self.service.drain_seconds = 0.5
        answer = post(self.url, stored_query(self.url))
        answer.addErrback(lambda failure: failure.value)  # the connection is cut: expected
        yield self.wait_for_read()
        yield self.service.stop()
        outcome = yield answer
        self.assertIsInstance(outcome, ResponseNeverReceived)  # closed without an answer


def _tmp(case: unittest.TestCase) -> Path:
    """A temporary folder removed after the test (trial's mktemp writes in the working
    directory)."""
    path = Path(tempfile.mkdtemp(prefix="aiguillage-shared-record-"))
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def _later(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


def test_only_the_main_intake_process_serves_it(tmp_path):
    """If a --workers/--listeners child or a delivery-only process served it too, then the
    second process to bind its port would fail to start."""
    path = tmp_path / "engine.yaml"
    path.write_text("store: {url: 'sqlite:///s.db'}\nshared_record:\n  listen: 127.0.0.1:0\n"
                    f"  repository_unique_id: {REPOSITORY}\n")
    loaded = load_config(str(path))
    for roles, serve_admin, served in ((("intake", "delivery"), True, True),
                                       (("intake",), True, True),
                                       (("intake",), False, False),
                                       (("delivery",), True, False)):
        engine = Engine(loaded, reactor, roles=roles, serve_admin=serve_admin)
        assert (engine.shared_record is not None) == served, (roles, serve_admin)
        engine.store.engine.dispose()


class PortTakenTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_a_taken_port_fails_the_start_naming_the_shared_record(self):
        """If the bind error came bare, then the operator would not know which listener."""
        taken = reactor.listenTCP(0, protocol.Factory.forProtocol(protocol.Protocol),
                                  interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        path = _tmp(self) / "engine.yaml"
        path.write_text("store: {url: 'sqlite:///s.db'}\nshared_record:\n"
                        f"  listen: 127.0.0.1:{taken.getHost().port}\n"
                        f"  repository_unique_id: {REPOSITORY}\n")
        service = SharedRecordService(load_config(str(path)).shared_record, None,
                                      reactor, registry=HeldStore())
        error = yield self.assertFailure(service.start(), RuntimeError)
        self.assertIn(f"shared record: cannot listen on 127.0.0.1:{taken.getHost().port}",
                      str(error))
