"""
Every ACK the intake answers with, for v2.3, v2.5 and v2.8 messages, validated by hl7apy at
its strictest level for the version of the ACK (tests/mllp/test_ack_conformance.py covers
the ACKs the MLLP layer writes by itself, and every code/text/error combination).
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from engine import status as st
from engine.flow.response import ACK_AFTER_PROCESSING
from engine.store.records import Decision, IngestResult
from mllp.ack import parse_ack
from mllp.header import read_header
from tests.flow.intake_support import PEER, make, message, plan, result_of
from tests.mllp.test_ack_conformance import validation_problems

VERSIONS = ["2.3", "2.5", "2.8"]
# The sender's own unknown MSH-18, echoed as it must be (hl7apy has no tables for v2.3).
ECHOED_CHARSET = "Warning: Value KLINGON not in table HL70211 in element MSH.MSH_18"


def answered(payload: bytes, *, channel: Any = None, answer: Callable | None = None,
             outcome: Decision | Exception | None = None) -> bytes:
    """The ACK the intake answers ``payload`` with; ``outcome`` is the decider's, if any."""
    setup = make(channel, answer)
    d = setup.intake.receive("adt", payload, PEER)
    if outcome is not None:
        processed = setup.decider.queued[0][2]
        if isinstance(outcome, Exception):
            processed.errback(outcome)
        else:
            processed.callback(outcome)
    return result_of(d)


def cases(version: str) -> dict[str, bytes]:
    """Every kind of answer of the intake, for a message of ``version``."""
    after = plan(ack_mode=ACK_AFTER_PROCESSING, sending_application="AIG^1.2.250^ISO",
                 slow=True)
    received = lambda record, message_id: IngestResult(message_id, st.RECEIVED)  # noqa: E731
    good = message("C-1", version=version)

    def failing(record, message_id):
        raise RuntimeError("database is locked")

    def processed(**fields) -> bytes:
        return answered(good, channel=after, answer=received,
                        outcome=Decision(**fields))

    return {
        "accepted": answered(good),
        "accepted, enhanced mode": answered(message("C-1", msh15="AL", version=version)),
        "duplicate": answered(good, answer=lambda record, message_id: IngestResult(
            message_id, st.DUPLICATE, duplicate_of=5)),
        "bytes invalid in the charset": answered(
            message("C-1", charset="UNICODE UTF-8", version=version).replace(b"DUPONT",
                                                                             b"DUPR\xc9")),
        "unknown charset": answered(message("C-1", charset="KLINGON", version=version)),
        "store failure": answered(good, answer=failing),
        "processed into ERROR": processed(status=st.ERROR, error="steps[0]: no ZBE segment"),
        "structural validation": processed(status=st.ERROR, error="PID-3 missing",
                                           error_code=101, error_location="PID^1^3"),
        "filtered": processed(status=st.FILTERED),
        "processing not recorded": answered(good, channel=after, answer=received,
                                            outcome=RuntimeError("commit failed")),
        "MSH-10 empty": answered(good.replace(b"|C-1|", b"||")),
        "MSH-9 empty": answered(good.replace(b"ADT^A01^ADT_A01", b"")),
        "MSH-12 empty": answered(good.replace(f"|P|{version}".encode(), b"|P|")),
        "MSH-2 invalid": answered(good.replace(b"^~\\&", b"^~\\", 1)),
        "no MSH": answered(b"PID|1||42^^^CHU\r"),
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_every_intake_ack_validates_for_its_version(version):
    """If the intake answers any kind of input, then its ACK validates strictly in the
    version it says (the message's own, v2.5 when that cannot be read), MSA-2 echoes MSH-10
    when it can be read, and v2.7+ ACKs carry no MSA-3."""
    for case, ack in cases(version).items():
        header = read_header(ack)
        result = parse_ack(ack)
        if case not in ("MSH-10 empty", "no MSH"):
            assert result.control_id_echoed == "C-1", case
        if header.version >= "2.7":
            assert all(not line.startswith(b"MSA") or line.count(b"|") <= 2
                       for line in ack.split(b"\r")), case
        expected = []
        if case in ("MSH-10 empty", "no MSH"):
            # MSA-2 is required, and there is no control id to echo: an empty MSA-2 is the
            # one honest answer (any other would name a message that was not refused).
            expected = ["Error: Missing required child MSA.MSA_2"]
        if case == "MSH-9 empty" and header.version == "2.8":
            # From v2.6 MSH-9.2 is required, and there is no trigger event to echo.
            expected = ["Error: Missing required child MSH_9.MSG_2"]
        problems = [problem for problem in validation_problems(ack, header.version)
                    if problem != ECHOED_CHARSET]
        assert problems == expected, (case, ack)
