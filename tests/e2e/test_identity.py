"""
The patient index end to end: the real engine on loopback, ADT feed (ITI-8), PIX (ITI-9) and
PDQ (ITI-21) over real MLLP, the index and its audit read back from the store.

One channel, ``mpi``, is the PIX Manager / PDQ Supplier: it acknowledges after processing,
feeds the index from ADT and answers queries; a second, ``dpi``, resolves the patient of
whatever it receives and rewrites PID-3 into the territory's GHT domain before writing it to
a file. Every response is validated by hl7apy (strict, v2.5). Runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from twisted.internet import defer, threads
from twisted.trial import unittest

from engine import status as st
from engine.store import queries
from identity.store.history import history
from mllp.ack import parse_ack
from tests.e2e import harness as h
from tests.identity.hl7.conformance import validation_problems
from tests.identity.hl7.messages import ght, ipp, pid_segment

CHU_OID, GHT_OID = "1.2.250.1.999.1.1", "1.2.250.1.999.2.1"
STRUCTURES = {"A01": "ADT_A01", "A04": "ADT_A01", "A05": "ADT_A05", "A08": "ADT_A01",
              "A28": "ADT_A05", "A31": "ADT_A05", "A40": "ADT_A39", "A24": "ADT_A24",
              "A37": "ADT_A37", "A47": "ADT_A30"}


def adt(event: str, control_id: str, *segments: str) -> bytes:
    head = (f"MSH|^~\\&|GAM|CHU-EXEMPLE|MPI|GHT|20260318112045||ADT^{event}^"
            f"{STRUCTURES[event]}|{control_id}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8")
    return ("\r".join([head, "EVN||20260318112045", *segments]) + "\r").encode()


def durand(number: str, sequence: int = 1) -> str:
    return pid_segment(ipp(number), name="DURAND^PAUL^PAUL^^^^L", date="19700101", sex="M",
                       sequence=sequence)


def pix(control_id: str, number: str, domain: str = CHU_OID, wanted: str = "") -> bytes:
    return (f"MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QBP^Q23^QBP_Q21|{control_id}|P|2.5\r"
            f"QPD|IHE PIX Query|{control_id}T|{number}^^^&{domain}&ISO|{wanted}\r"
            "RCP|I\r").encode()


def pdq(control_id: str, parameters: str, limit: str = "", pointer: str = "") -> bytes:
    text = (f"MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QBP^Q22^QBP_Q21|{control_id}|P|2.5\r"
            f"QPD|IHE PDQ Query|T22|{parameters}\rRCP|I|{limit}{'^RD' if limit else ''}\r")
    if pointer:
        text += f"DSC|{pointer}|I\r"
    return text.encode()


class IdentityTestsMixin(h.EngineCase):

    def write(self) -> str:
        """engine.yaml with the territory's domains, the mpi and dpi channels."""
        directory = self.directory
        (directory / "channels").mkdir()
        engine = {"node": "e2e", "store": {"url": self.store_url}, "log_level": "warning",
                  "channels": ["channels/*.yaml"],
                  "identity": {"domains": [{"namespace": "CHU-EXEMPLE", "oid": CHU_OID},
                                           {"namespace": "GHT-ARVERNE", "oid": GHT_OID}],
                               "target": "GHT-ARVERNE"}}
        mpi = {"name": "mpi", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "response": {"mode": "after-processing"},
               "identity": {"feed": True, "queries": True, "query-limit": 2},
               "destinations": [{"name": "adt", "type": "file",
                                 "directory": str(directory / "adt")}]}
        dpi = {"name": "dpi", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "response": {"mode": "after-processing"},
               "identity": {"rewrite-pid3": "INS-then-local"},
               "destinations": [{"name": "out", "type": "file",
                                 "directory": str(directory / "out"),
                                 "filename": "{control_id}.hl7"}]}
        for channel in (mpi, dpi):
            (directory / "channels" / f"{channel['name']}.yaml").write_text(
                yaml.safe_dump(channel, sort_keys=False))
        (directory / "engine.yaml").write_text(yaml.safe_dump(engine, sort_keys=False))
        return str(directory / "engine.yaml")

    @defer.inlineCallbacks
    def start(self):
        engine = yield h.start_engine(self.write())
        self.addCleanup(engine.stop)
        self.engine_ = engine
        return engine

    @defer.inlineCallbacks
    def send(self, channel: str, *payloads: bytes):
        """The raw answers to ``payloads``, sent one after the other on one connection."""
        port = self.engine_.source_port(channel)
        results = yield h.send_over(port, payloads)
        return [answer for _, _, answer in results]

    def index(self, operation, *args, **kwargs):
        """Deferred[operation(StoreIdentityIndex, ...)] run in a thread."""
        from identity.store.service import StoreIdentityIndex

        index = StoreIdentityIndex(self.engine_.store)
        return threads.deferToThread(lambda: operation(index, *args, **kwargs))

    def audits(self):
        """Deferred[list of the id_audit rows, oldest first]."""
        from identity.store.schema import id_audit
        from sqlalchemy import select

        def read(conn):
            return [dict(row._mapping) for row in conn.execute(
                select(id_audit).order_by(id_audit.c.id))]

        return self.engine_.store.read(read)

    def stored(self, channel: str):
        return h.stored_messages(self.engine_, channel=channel)

    # -- the feed ---------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_each_adt_event_maintains_the_index(self):
        """If A01, A04, A05, A08, A28 and A31 name one patient, then one person, each AA, each
        journal line naming the person; A24 links a GHT number, A37 unlinks it, A47 changes
        the CHU number; each leaves an ITI-8 audit record."""
        from identity.model import IdentifierDomain, LocalIdentifier

        yield self.start()
        events = ["A01", "A04", "A05", "A08", "A28", "A31"]
        answers = yield self.send("mpi", *[adt(e, f"F{e}", durand("100")) for e in events])
        self.assertEqual([parse_ack(a).code for a in answers], ["AA"] * 6)
        self.assertEqual([validation_problems(a.decode(), "ACK") for a in answers], [[]] * 6)
        rows = yield self.stored("mpi")
        self.assertEqual({row["status"] for row in rows}, {st.TRANSFORMED})
        chu = IdentifierDomain(CHU_OID, "CHU-EXEMPLE")
        person = yield self.index(lambda i: i.person(LocalIdentifier(chu, "100")))
        self.assertEqual(person.traits.birth_name, "DURAND")

        # G9 is registered as someone else (the matcher keeps them apart), then linked
        other = {"name": "LEROY^MARC^MARC^^^^L", "date": "19550505", "sex": "M"}
        link = adt("A24", "L1", durand("100"), pid_segment(ght("G9"), sequence=2, **other))
        unlink = adt("A37", "L2", durand("100"), pid_segment(ght("G9"), sequence=2, **other))
        answers = yield self.send("mpi", adt("A01", "G0", pid_segment(ght("G9"), **other)),
                                  link)
        self.assertEqual([parse_ack(a).code for a in answers], ["AA", "AA"])
        linked = yield self.index(lambda i: i.person(LocalIdentifier(chu, "100")))
        self.assertIn("G9", [i.value for i in linked.identifiers])
        answers = yield self.send("mpi", unlink)
        self.assertEqual(parse_ack(answers[0]).code, "AA", answers[0])
        unlinked = yield self.index(lambda i: i.person(LocalIdentifier(chu, "100")))
        self.assertNotIn("G9", [i.value for i in unlinked.identifiers])

        change = adt("A47", "C1", durand("101"), "MRG|" + ipp("100"))
        answers = yield self.send("mpi", change)
        self.assertEqual(parse_ack(answers[0]).code, "AA")
        moved = yield self.index(lambda i: i.person(LocalIdentifier(chu, "101")))
        self.assertEqual(moved.person_id, person.person_id)

        audits = yield self.audits()
        feeds = [a for a in audits if a["transaction"] == "ITI-8"]
        self.assertEqual(len(feeds), 10)
        self.assertEqual({a["outcome"] for a in feeds}, {"AA"})

    @defer.inlineCallbacks
    def test_merge_and_unmerge_over_mllp(self):
        """If A40 merges CHU 2 into CHU 1, then a PIX query on 2 finds 1's person; unmerged by
        the operator, then the query on 2 finds its own person again; both queries audited."""
        from identity.model import IdentifierDomain, LocalIdentifier

        yield self.start()
        yield self.send("mpi", adt("A01", "M1", durand("1")),
                        adt("A01", "M2", pid_segment(ipp("2") + "~" + ght("G2"),
                                                     name="DURANT^POL^POL^^^^L",
                                                     date="19701001", sex="M")))
        answers = yield self.send("mpi", adt("A40", "M3", durand("1"), "MRG|" + ipp("2")))
        self.assertEqual(parse_ack(answers[0]).code, "AA")
        (merged,) = yield self.send("mpi", pix("Q1", "1"))
        text = merged.decode()
        self.assertEqual(validation_problems(text, "RSP_K23"), [])
        self.assertIn("G2^^^GHT-ARVERNE", text)
        chu = IdentifierDomain(CHU_OID, "CHU-EXEMPLE")
        yield self.index(lambda i: i.unmerge(LocalIdentifier(chu, "2"), cause="operator:test"))
        (after,) = yield self.send("mpi", pix("Q2", "1"))
        self.assertEqual(validation_problems(after.decode(), "RSP_K23"), [])
        self.assertNotIn("G2^^^GHT-ARVERNE", after.decode())
        self.assertIn("QAK|Q2T|NF", after.decode())
        audits = yield self.audits()
        queries = [(a["transaction"], a["control_id"], a["outcome"]) for a in audits
                   if a["transaction"] == "ITI-9"]
        self.assertEqual(queries, [("ITI-9", "Q1", "OK"), ("ITI-9", "Q2", "NF")])
        (merge,) = [a for a in audits if a["control_id"] == "M3"]
        self.assertEqual((merge["transaction"], merge["outcome"]), ("ITI-8", "AA"))
        survivor = int(json.loads(merge["persons"])[0])
        events = yield self.engine_.store.read(history, survivor)
        self.assertEqual([(e["kind"], e["cause"].split(":")[0]) for e in events
                          if e["kind"] in ("merge", "unmerge")],
                         [("merge", "message"), ("unmerge", "operator")])
        rows = yield self.stored("mpi")
        self.assertEqual([r["status"] for r in rows if r["control_id"] in ("Q1", "Q2")],
                         [st.FILTERED, st.FILTERED])

    # -- bad input ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_bad_input_is_refused_with_the_right_err_and_stored(self):
        """If PID-3 is empty, names an unknown domain, or A40 merges nobody, then AE with ERR
        101 / 204 / 204 at the right place, each stored in ERROR with the reason; a PIX query
        for an unknown domain is answered AE; contradictory traits are AA with a warning."""
        yield self.start()
        payloads = [adt("A01", "B1", pid_segment("")),
                    adt("A01", "B2", pid_segment("5^^^X&1.2.3.4.5&ISO^PI")),
                    adt("A40", "B3", durand("1"), "MRG|" + ipp("404")),
                    pix("B4", "1", domain="9.9.9"),
                    adt("A01", "B5", pid_segment(ipp("55"), status="QUAL"))]
        answers = yield self.send("mpi", *payloads)
        acks = [parse_ack(a) for a in answers[:3]]
        self.assertEqual([(a.code, a.error_codes) for a in acks],
                         [("AE", (101,)), ("AE", (204,)), ("AE", (204,))])
        self.assertIn(b"MRG^1^1", answers[2])
        self.assertEqual([validation_problems(a.decode(), "ACK") for a in answers[:3]],
                         [[]] * 3)
        self.assertEqual(validation_problems(answers[3].decode(), "RSP_K23"), [])
        self.assertIn("MSA|AE|B4", answers[3].decode())
        # contradictory traits (QUAL without an INS): registered for review, AA with a warning
        self.assertEqual(parse_ack(answers[4]).code, "AA")
        self.assertIn(b"|W|", answers[4])
        rows = yield self.stored("mpi")
        self.assertEqual([(r["control_id"], r["status"]) for r in rows],
                         [("B1", st.ERROR), ("B2", st.ERROR), ("B3", st.ERROR),
                          ("B4", st.ERROR), ("B5", st.TRANSFORMED)])
        self.assertTrue(all(r["error"].startswith("identity: ") for r in rows[:4]))

    # -- PDQ ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_pdq_pages_with_continuation_and_cancel(self):
        """If three DUPONT are known and the supplier's limit is 2, then a first page of 2 with
        a pointer, the second of 1 from it; QCN^J01 is acknowledged; each page audited."""
        yield self.start()
        yield self.send("mpi", *[adt("A01", f"D{n}", pid_segment(
            ipp(f"D{n}"), name=f"DUPONT^JEAN{n}^JEAN{n}^^^^L", date=f"1980010{n}", sex="M"))
            for n in (1, 2, 3)])
        (first,) = yield self.send("mpi", pdq("P1", "@PID.5.1^DUPONT"))
        self.assertEqual(validation_problems(first.decode(), "RSP_K21"), [])
        self.assertEqual(first.decode().count("\rPID|"), 2)
        pointer = next(s for s in first.decode().split("\r") if s.startswith("DSC|")).split("|")[1]
        (second,) = yield self.send("mpi", pdq("P2", "@PID.5.1^DUPONT", pointer=pointer))
        self.assertEqual(validation_problems(second.decode(), "RSP_K21"), [])
        self.assertEqual(second.decode().count("\rPID|"), 1)
        (cancel,) = yield self.send("mpi", (
            "MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QCN^J01^QCN_J01|P3|P|2.5\r"
            "QID|T22|IHE PDQ Query\r").encode())
        self.assertEqual(parse_ack(cancel).code, "AA")
        audits = yield self.audits()
        self.assertEqual([(a["control_id"], a["outcome"]) for a in audits
                          if a["transaction"] == "ITI-21"], [("P1", "OK"), ("P2", "OK")])

    # -- reload -------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_reload_applies_engine_yaml_identity(self):
        """If engine.yaml's identity: gets another target and thresholds no score reaches and
        the engine reloads, then both channels with an identity: step are re-planned and the
        report says so; the same traits under a new number no longer link, and dpi rewrites
        PID-3 into the new target."""
        from identity.model import IdentifierDomain, LocalIdentifier
        from engine.reload import reloader as rl

        yield self.start()
        anne = {"name": "MARTIN^ANNE^ANNE^^^^L", "date": "19900101", "sex": "F"}
        answers = yield self.send("mpi", adt("A01", "RL1", pid_segment(ipp("7") + "~" + ght("G7"),
                                                                        **anne)),
                                  adt("A01", "RL2", pid_segment(ipp("9"), **anne)))
        self.assertEqual([parse_ack(a).code for a in answers], ["AA", "AA"])
        chu = IdentifierDomain(CHU_OID, "CHU-EXEMPLE")

        def holder(number):
            return self.index(lambda i: i.person(LocalIdentifier(chu, number)).person_id)

        first = yield holder("7")
        linked = yield holder("9")
        self.assertEqual(linked, first)

        path = Path(self.directory / "engine.yaml")
        engine = yaml.safe_load(path.read_text())
        engine["identity"].update(target="CHU-EXEMPLE", matching={"upper": 900, "lower": 800})
        path.write_text(yaml.safe_dump(engine, sort_keys=False))
        report = yield self.engine_.reload()
        self.assertEqual((report.outcome, report.errors, report.channels),
                         (rl.RELOADED, [], {"mpi": "changed", "dpi": "changed"}))
        self.assertIn("engine.yaml: identity (domains, target, matching) applied; identity "
                      "steps rebuilt: dpi, mpi", report.changes)

        (answer,) = yield self.send("mpi", adt("A01", "RL3", pid_segment(ipp("8"), **anne)))
        self.assertEqual(parse_ack(answer).code, "AA")
        apart = yield holder("8")
        self.assertNotEqual(apart, first)
        oru = ("MSH|^~\\&|LAB|CHU|DPI|GHT|20260320||ORU^R01^ORU_R01|RL4|P|2.5\r"
               + pid_segment(ipp("7"), **anne) + "\rOBR|1\r").encode()
        (answer,) = yield self.send("dpi", oru)
        self.assertEqual(parse_ack(answer).code, "AA")
        written = Path(self.directory / "out" / "RL4.hl7")
        yield h.wait_until(written.exists, 20, "RL4 is written")
        self.assertIn(f"PID|1||7^^^CHU-EXEMPLE&{CHU_OID}&ISO^PI", written.read_bytes().decode())

    # -- enhanced mode ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_enhanced_mode_queries_get_ca_then_their_answer(self):
        """If PIX and PDQ queries and a cancel ask for enhanced mode (MSH-15 AL; MSH-16 empty,
        AL or NE), then each is answered CA at commit, then its RSP (the cancel its ACK) on
        the same connection, the RSP valid and naming the query."""
        from mllp.framing import encode_frame
        from tests.e2e.test_enhanced import connect, enhanced

        yield self.start()
        yield self.send("mpi", adt("A01", "EQ0", durand("300")))
        cancel = ("MSH|^~\\&|DPI|CAB|MPI|GHT|20260320||QCN^J01^QCN_J01|EQ3|P|2.5\r"
                  "QID|T22|IHE PDQ Query\r").encode()
        queries = [enhanced(pix("EQ1", "300"), "AL", ""), enhanced(pdq("EQ2", "@PID.5.1^DURAND")),
                   enhanced(cancel, "AL", "NE")]
        reader = yield connect(self.engine_.source_port("mpi"))
        self.addCleanup(reader.transport.loseConnection)
        reader.transport.write(b"".join(encode_frame(q) for q in queries))
        yield h.wait_until(lambda: len(reader.frames) >= 6, 20, "three CA and three answers")
        answers = {}
        for frame in reader.frames:
            answer = parse_ack(frame)
            answers.setdefault(answer.control_id_echoed, []).append(
                (answer.code, frame.split(b"\r")[0].split(b"|")[8].decode()))
        self.assertEqual(answers, {
            "EQ1": [("CA", "ACK^Q23^ACK"), ("AA", "RSP^K23^RSP_K23")],
            "EQ2": [("CA", "ACK^Q22^ACK"), ("AA", "RSP^K22^RSP_K21")],
            "EQ3": [("CA", "ACK^J01^ACK"), ("AA", "ACK^J01^ACK")]})
        rsp = {parse_ack(f).control_id_echoed: f.decode() for f in reader.frames
               if f.startswith(b"MSH") and b"|RSP^" in f}
        self.assertEqual(validation_problems(rsp["EQ1"], "RSP_K23"), [])
        self.assertIn("QAK|EQ1T|NF", rsp["EQ1"])
        self.assertEqual(validation_problems(rsp["EQ2"], "RSP_K21"), [])
        self.assertIn("DURAND^PAUL", rsp["EQ2"])
        audits = yield self.audits()
        self.assertEqual([(a["control_id"], a["outcome"]) for a in audits
                          if a["transaction"] in ("ITI-9", "ITI-21")], [("EQ1", "NF"), ("EQ2", "OK")])

    # -- the step on another channel ------------------------------------------------------

    @defer.inlineCallbacks
    def test_resolve_and_rewrite_pid3_on_a_channel(self):
        """If a person holds a GHT number, then a message on dpi naming its CHU number is
        written with PID-3 in GHT, and the journal names the person; one naming nobody the
        GHT domain knows is an ERROR with 204 at PID-3."""
        yield self.start()
        yield self.send("mpi", adt("A01", "R0", pid_segment(
            ipp("7") + "~" + ght("G7"), name="MARTIN^ANNE^ANNE^^^^L", date="19900101",
            sex="F")))
        oru = ("MSH|^~\\&|LAB|CHU|DPI|GHT|20260320||ORU^R01^ORU_R01|R1|P|2.5\r"
               + pid_segment(ipp("7"), name="MARTIN^ANNE^ANNE^^^^L", date="19900101", sex="F")
               + "\rOBR|1\r").encode()
        stranger = oru.replace(b"|R1|", b"|R2|").replace(b"7^^^CHU", b"8^^^CHU").replace(
            b"MARTIN", b"LEGRAND")
        answers = yield self.send("dpi", oru, stranger)
        self.assertEqual([parse_ack(a).code for a in answers], ["AA", "AE"])
        self.assertEqual(parse_ack(answers[1]).error_codes, (204,))
        written = Path(self.directory / "out" / "R1.hl7")
        yield h.wait_until(written.exists, 20, "R1 is written")
        self.assertIn("PID|1||G7^^^GHT-ARVERNE&1.2.250.1.999.2.1&ISO^PI",
                      written.read_bytes().decode())
        rows = yield self.stored("dpi")
        shown = yield self.engine_.store.read(queries.message_detail, rows[0]["id"])
        self.assertIn("PID-3 rewritten: G7@GHT-ARVERNE",
                      " ".join(line["detail"] or "" for line in shown["journal"]))
        self.assertEqual(rows[1]["status"], st.ERROR)


class SQLiteIdentityTests(IdentityTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLIdentityTests(IdentityTestsMixin, unittest.TestCase):
    backend = "postgresql"
