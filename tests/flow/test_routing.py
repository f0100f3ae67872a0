"""Tests for engine.flow.routing: patient keys, lanes, and one delivery per destination."""
from __future__ import annotations

import random

import pytest

from engine.flow.routing import (ORDER_BY_DESTINATION, ORDER_BY_PATIENT, lane_for, lanes_for,
                                 patient_key, plan_deliveries, scanned_patient_key)
from engine.store.records import NewDelivery

ADT = ("MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A01|1|P|2.5\r"
       "EVN|A01|20260101\r"
       "PID|1||123456^^^HOSP^PI~987^^^NAT^NH||DUPONT^JEAN\r"
       "PV1|1|I\r")


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_patient_key_reads_pid3_first_repetition_first_component(separator):
    """If PID-3 has several repetitions and components, then the key is the first
    component of the first repetition, whatever the segment separator."""
    assert patient_key(ADT.replace("\r", separator)) == "123456"


def test_patient_key_repetition_before_component():
    """If the first repetition of PID-3 has a single component, then the key stops at the
    repetition separator."""
    assert patient_key("MSH|^~\\&|HIS\rPID|1||123~456^^^NAT\r") == "123"


def test_patient_key_with_other_separators():
    """If the message uses other field, component and repetition separators, then they are
    the ones split on."""
    text = "MSH#$*\\&#HIS\rPID#1##ABC$$$HOSP*XYZ$$$NAT#\r"
    assert patient_key(text, "#", "$", "*") == "ABC"


@pytest.mark.parametrize("text, key", [
    ("MSH|^~\\&|HIS\nPID|1||LF1\rPID|1||CR2\r", "LF1"),  # the first PID, ended by LF
    ("MSH|^~\\&|HIS\rPID|1||CR1\nPID|1||LF2\n", "CR1"),
    ("MSH|^~\\&|HIS\rPID|1\nPV1|1||NOT\r", ""),  # PID ends at LF, before a later CR
    ("MSH|^~\\&|HIS\nPID|1||LF1", "LF1"),  # no terminator at all
])
def test_patient_key_with_mixed_segment_ends(text, key):
    """If CR and LF both end segments, then the first PID segment is read, up to whichever
    ends it first."""
    assert patient_key(text) == key


@pytest.mark.parametrize("text", [
    "MSH|^~\\&|HIS\rEVN|A01\r",  # no PID
    "MSH|^~\\&|HIS\rPID|1|\r",  # PID stops before PID-3
    "MSH|^~\\&|HIS\rPID|1||\r",  # PID-3 empty
    "MSH|^~\\&|HIS\rPIDX|1||123\r",  # not a PID segment
])
def test_no_patient_key(text):
    """If there is no PID-3 value, then the key is empty."""
    assert patient_key(text) == ""


def test_lane_for_is_stable_and_in_range():
    """If the same key is given twice, then it gets the same lane, always below ``lanes``;
    different patients spread over the lanes."""
    keys = [f"P{n}" for n in range(200)]
    lanes = [lane_for(k, 8) for k in keys]
    assert lanes == [lane_for(k, 8) for k in keys]
    assert all(0 <= lane < 8 for lane in lanes)
    assert len(set(lanes)) == 8
    assert lane_for("123456", 8) == 1  # CRC-32: fixed across runs and versions


@pytest.mark.parametrize("key,lanes", [("", 8), ("123", 1), ("123", 0)])
def test_lane_zero(key, lanes):
    """If there is no key or only one lane, then the lane is 0."""
    assert lane_for(key, lanes) == 0


def test_plan_deliveries_one_per_destination():
    """If a channel has destinations ordered by destination and by patient, then each gets
    one delivery: lane 0 for the first kind, the patient's lane for the second."""
    destinations = [("archive", ORDER_BY_DESTINATION, 4), ("dpi", ORDER_BY_PATIENT, 8),
                    ("lab", ORDER_BY_PATIENT, 1)]
    assert plan_deliveries(destinations, "123456") == (
        NewDelivery("archive", 0), NewDelivery("dpi", lane_for("123456", 8)),
        NewDelivery("lab", 0))
    assert plan_deliveries([], "123456") == ()


@pytest.mark.parametrize("text, key", [
    ("MSH|^~\\&|HIS\rPID|1\rPID|1||LATER\r", ""),  # the first PID stops before PID-3
    ("MSH|^~\\&|HIS\rPID|1||\rPID|1||LATER\r", ""),
    ("PID|1||FIRST\rPID|1||SECOND\r", "FIRST"),  # PID first of all
    ("MSH|^~\\&|HIS\rPV1|1|PID|1||NOT\rPID|1||YES\r", "YES"),  # "PID|" inside a segment
    ("MSH|^~\\&|HIS\r\nPID|1||CRLF^^^A\r\n", "CRLF"),
    ("MSH|^~\\&|HIS\rPID|1||ÉLÈVE~X^Y\r", "ÉLÈVE"),
])
def test_patient_key_reads_the_first_pid_only(text, key):
    """If a message has several PID segments, or "PID|" elsewhere than at a segment's start,
    then the first PID segment is read, and only up to its end."""
    assert patient_key(text) == key == scanned_patient_key(text)


def test_patient_key_agrees_with_the_scan_on_any_text():
    """If any text of segment ends, separators and PIDs is read, then the search and the
    scan find the same key (the search hands what it cannot read to the scan)."""
    rng = random.Random(8)
    pieces = ["\r", "\n", "PID", "|", "^", "~", "1", "AB", "\rPID|", "\nPID|", "#", "$"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        for separators in (("|", "^", "~"), ("#", "$", "*")):
            assert patient_key(text, *separators) == scanned_patient_key(text, *separators), \
                (text, separators)


def test_lanes_for_is_lane_for_of_each_destination():
    """If destinations of every ordering and lane count share a message, then each gets
    the lane lane_for gives its key (0 when ordered by destination), one checksum for all."""
    table = [("a", ORDER_BY_PATIENT, 8), ("b", ORDER_BY_DESTINATION, 8),
             ("c", ORDER_BY_PATIENT, 1), ("d", ORDER_BY_PATIENT, 0), ("e", ORDER_BY_PATIENT, 3)]
    for key in ("", "123456", "É", *(f"P{n}" for n in range(50))):
        expected = tuple(lane_for(key, lanes) if order == ORDER_BY_PATIENT else 0
                         for _, order, lanes in table)
        assert lanes_for(table, key) == expected
        assert plan_deliveries(table, key) == tuple(
            NewDelivery(name, lane) for (name, _, _), lane in zip(table, expected))
