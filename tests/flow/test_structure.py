"""Tests for engine.flow.structure: hl7apy's refusals as table 0357 codes and ERR-2 locations,
with the errors hl7apy really raises on real mistakes."""
from __future__ import annotations

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from engine import status as st
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, InboundMessage
from engine.flow.structure import classify

MSH = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|1|P|{version}\r"
EVN = "EVN||20240101\r"
PID = "PID|1||123^^^H^PI||DOE^J\r"
PV1 = "PV1|1|I\r"


def hl7apy_error(text: str) -> Exception:
    """What hl7apy raises when it validates ``text`` strictly (the test fails if nothing)."""
    with pytest.raises(Exception) as raised:
        parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    return raised.value


CASES = {
    "a required segment missing": (EVN + PV1, "2.5", (100, "PID^1")),
    "a required field missing": (EVN + "PID|1||||DOE^J\r" + PV1, "2.5", (101, "PID^1^3")),
    "a segment too many": (EVN + PID + PID + PV1, "2.5", (100, "PID^2")),
    "a field repeated": (EVN + "PID|1~2||123^^^H^PI||DOE^J\r" + PV1, "2.5", (102, "PID^1^1")),
    "a bad date": ("EVN||notadate\r" + PID + PV1, "2.5", (102, "EVN^1^2")),
    "a value too long, v2.5": (EVN + PID + "PV1|1|I|" + "X" * 300 + "\r", "2.5",
                               (102, "PV1^1^3")),
    "a value too long, v2.7": (EVN + PID + "PV1|1|I|" + "X" * 300 + "\r", "2.7",
                               (104, "PV1^1^3")),
    "too many fields": (EVN + "PID|1||123^^^H^PI||DOE^J" + "|" * 60 + "x\r" + PV1, "2.5",
                        (100, "")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_classify_real_hl7apy_errors(case):
    """If hl7apy refuses a message, then its error becomes a table 0357 code (100-104) and
    the location of the first place in the message that explains it."""
    body, version, expected = CASES[case]
    text = (MSH.format(version=version) + body).rstrip("\r")
    assert classify(hl7apy_error(text), text, version) == expected


def test_classify_without_a_readable_message_names_no_location():
    """If the text cannot be parsed, then the code stands and the location is empty."""
    assert classify(ValueError("x is not an HL7 valid date value"), "garbage", "2.5") == (102, "")


def test_pipeline_refusal_carries_code_and_location():
    """If structural validation fails in the pipeline, then the ERROR result carries the
    code and location for the ACK, and the error text names the location."""
    text = MSH.format(version="2.5") + EVN + "PID|1||||DOE^J\r" + PV1
    plan = ChannelPlan(name="adt", destinations=(), validation="structure")
    result = decide(plan, InboundMessage(1, text, "|", "^~\\&", text.encode(), "1",
                                          "ADT^A01^ADT_A01"))
    assert result.status == st.ERROR
    assert (result.error_code, result.error_location) == (101, "PID^1^3")
    assert result.error.endswith("(at PID^1^3)")
