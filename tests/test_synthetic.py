"""
engine.synthetic makes realistic, distinct, reproducible traffic.

The generator builds messages by string formatting; python-hl7 and hl7apy are the oracles
that say the result is HL7.  The properties the load tests rely on are checked directly:
unique MSH-10, the patient named by PID-3, round-robin patients, determinism by seed, sizes.
"""
from __future__ import annotations

import time

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from engine.synthetic import (
    adt_message,
    control_id_of,
    message_stream,
    oru_message,
    patient_ipp,
    patient_of,
)

CHARSETS = {"8859/1": "latin-1", "UNICODE UTF-8": "utf-8"}
INS_NIR_OID = "1.2.250.1.213.1.4.8"
IPP_OID = "1.2.250.1.999.1.1"


def decode(payload: bytes) -> str:
    """Decode strictly with the charset MSH-18 names."""
    charset = payload.split(b"\r", 1)[0].split(b"|")[17].decode("ascii")
    return payload.decode(CHARSETS[charset])


def oracles(payload: bytes):
    text = decode(payload)
    return hl7.parse(text), parse_message(
        text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT
    )


def nir_key_ok(nir: str) -> bool:
    return len(nir) == 15 and nir.isdigit() and 97 - int(nir[:13]) % 97 == int(nir[13:])


def check_pid(parsed, apy, patient: int) -> None:
    """PID-3 = IPP then INS-NIR, and the NIR agrees with PID-7 and PID-8 as a real one does."""
    pid = parsed.segment("PID")
    pid3 = pid(3)
    assert len(pid3) == 2
    assert str(pid3(1)(1)) == patient_ipp(patient)
    assert [str(pid3(1)(4)(2)), str(pid3(1)(5))] == [IPP_OID, "PI"]
    nir = str(pid3(2)(1))
    assert [str(pid3(2)(4)(2)), str(pid3(2)(5))] == [INS_NIR_OID, "INS"]
    assert nir_key_ok(nir)
    birth = str(pid(7))
    assert nir[0] == {"M": "1", "F": "2"}[str(pid(8))]
    assert nir[1:5] == birth[2:6]
    birthplace = [r for r in (pid(11)(i) for i in range(1, len(pid(11)) + 1))
                  if str(r(7)) == "BDL"]
    assert nir[5:10] == str(birthplace[0](9))
    assert str(pid(32)) == "QUAL"
    assert [r.cx_1.to_er7() for r in apy.pid.pid_3] == [patient_ipp(patient), nir]
    assert apy.pid.pid_3[1].cx_4.hd_2.to_er7() == INS_NIR_OID


@pytest.mark.parametrize("encoding", sorted(CHARSETS))
@pytest.mark.parametrize("trigger, structure", [
    ("A01", "ADT_A01"), ("A02", "ADT_A02"), ("A03", "ADT_A03"), ("A04", "ADT_A01"),
    ("A08", "ADT_A01"),
])
def test_adt_parses_with_both_oracles(trigger, structure, encoding):
    """If an ADT is generated, then both parsers read its header, PID and PAM France parts."""
    payload = adt_message(4242, trigger=trigger, patient=17, encoding=encoding,
                          sending_app="GAM", sending_facility="CHU-TEST")
    assert payload.startswith(b"MSH|^~\\&|GAM|CHU-TEST|")
    assert payload.endswith(b"\r") and b"\n" not in payload
    parsed, apy = oracles(payload)
    msh = parsed.segment("MSH")
    assert str(msh(9)) == f"ADT^{trigger}^{structure}"
    assert str(msh(10)) == "ADT000004242"
    assert str(msh(18)) == encoding
    assert apy.msh.msh_9.to_er7() == f"ADT^{trigger}^{structure}"
    assert apy.msh.msh_10.to_er7() == "ADT000004242"
    check_pid(parsed, apy, 17)
    pv1 = parsed.segment("PV1")
    assert str(pv1(2)) == ("O" if trigger == "A04" else "I")
    assert str(pv1(45)) == (str(msh(7)) if trigger == "A03" else "")
    has_zbe = any(str(s(0)) == "ZBE" for s in parsed)
    assert has_zbe == (trigger != "A08")
    if has_zbe:
        assert str(parsed.segment("ZBE")(4)) == "INSERT"


@pytest.mark.parametrize("encoding", sorted(CHARSETS))
def test_encoding_is_the_one_msh18_names(encoding):
    """If MSH-18 says 8859/1, then the accents are latin-1 bytes; if UTF-8, UTF-8 bytes."""
    payload = adt_message(1, encoding=encoding)
    text = decode(payload)
    assert any(ord(c) > 127 for c in text)
    other = "utf-8" if encoding == "8859/1" else "latin-1"
    assert payload != text.encode(other)
    assert "précision".encode(CHARSETS[encoding]) in payload


@pytest.mark.parametrize("results", [1, 5, 20, 45])
def test_oru_parses_with_both_oracles(results):
    """If an ORU asks for N results, then it holds N coded NM OBX with coherent flags."""
    payload = oru_message(777, results=results, patient=3)
    parsed, apy = oracles(payload)
    assert str(parsed.segment("MSH")(9)) == "ORU^R01^ORU_R01"
    assert apy.msh.msh_10.to_er7() == "ORU000000777"
    check_pid(parsed, apy, 3)
    observations = parsed.segments("OBX")
    assert len(observations) == results
    assert len([s for s in apy.children if s.name == "OBX"]) == results
    assert [str(o(1)) for o in observations] == [str(i) for i in range(1, results + 1)]
    for obx in observations:
        assert str(obx(2)) == "NM"
        assert str(obx(6)(1)(3)) == "UCUM"
        value, reference, flag = float(str(obx(5))), str(obx(7)), str(obx(8))
        if reference.startswith("<"):
            expected = "H" if value > float(reference[1:]) else "N"
        else:
            low, high = (float(x) for x in reference.split("-"))
            expected = "L" if value < low else "H" if value > high else "N"
        assert flag == expected


def test_oru_values_vary_between_messages():
    """If results never changed, then a load test would compress and cache unrealistically."""
    def values(n):
        return [str(o(5)) for o in hl7.parse(decode(oru_message(n))).segments("OBX")]
    assert len({tuple(values(n)) for n in range(20)}) == 20
    flags = {str(o(8)) for n in range(50)
             for o in hl7.parse(decode(oru_message(n))).segments("OBX")}
    assert flags == {"H", "L", "N"}


def test_sizes_are_those_of_real_messages():
    """If sizes drift, then the benchmark no longer measures realistic traffic (±20 %)."""
    for n in range(0, 5000, 97):
        assert 1200 <= len(adt_message(n)) <= 1800, n
        assert 1200 <= len(adt_message(n, trigger="A08")) <= 1800, n
        assert 3680 <= len(oru_message(n)) <= 5520, n


def test_control_ids_are_unique_over_ten_thousand_messages():
    """If MSH-10 repeated, then the engine would take the message for a duplicate."""
    stream = list(message_stream(10_000))
    ids = [control_id_of(m) for m in stream]
    assert len(set(ids)) == 10_000
    assert len(set(stream)) == 10_000
    for payload in stream[:: 1013]:
        assert control_id_of(payload) == str(hl7.parse(decode(payload)).segment("MSH")(10))


def test_start_gives_disjoint_control_ids():
    """If two senders use disjoint start ranges, then their control ids never collide."""
    first = {control_id_of(m) for m in message_stream(500)}
    second = {control_id_of(m) for m in message_stream(500, seed=9, start=500)}
    assert not first & second
    assert len(first | second) == 1000


def test_patients_cycle_round_robin():
    """If patients cycle, then message i and i+patients name the same patient, all distinct."""
    patients = 7
    stream = list(message_stream(700, patients=patients, seed=5))
    named = [patient_of(m) for m in stream]
    assert len(set(named[:patients])) == patients
    assert set(named) == {patient_ipp(p) for p in range(patients)}
    assert all(named[i] == named[i + patients] for i in range(len(named) - patients))
    for payload in stream[:: 53]:
        pid3 = hl7.parse(decode(payload)).segment("PID")(3)
        assert patient_of(payload) == str(pid3(1)(1))


def test_each_patient_is_admitted_before_being_updated():
    """If a feed is realistic, then a patient's first ADT is an A01 and later ones are A08."""
    seen: dict[str, list[str]] = {}
    for payload in message_stream(2000, kinds=("adt",), patients=30, seed=2):
        trigger = payload.split(b"\r", 1)[0].split(b"|")[8].split(b"^")[1].decode()
        seen.setdefault(patient_of(payload), []).append(trigger)
    assert len(seen) == 30
    for triggers in seen.values():
        assert triggers[0] == "A01"
        assert set(triggers[1:]) == {"A08"}


def test_per_patient_control_ids_increase():
    """If a test checks delivery order per patient, then generation order is MSH-10 order."""
    last: dict[str, int] = {}
    for payload in message_stream(3000, patients=50, seed=1):
        number = int(control_id_of(payload)[3:])
        patient = patient_of(payload)
        assert number > last.get(patient, -1)
        last[patient] = number


def test_kinds_and_seed_choose_the_mix():
    """If kinds is restricted, then only that kind comes out; both kinds appear otherwise."""
    assert {control_id_of(m)[:3] for m in message_stream(200, kinds=("oru",))} == {"ORU"}
    assert {control_id_of(m)[:3] for m in message_stream(200, kinds=("adt",))} == {"ADT"}
    assert {control_id_of(m)[:3] for m in message_stream(200)} == {"ADT", "ORU"}


def test_determinism_by_seed():
    """If the same arguments are given, then the same bytes come out; another seed differs."""
    assert list(message_stream(300, seed=3)) == list(message_stream(300, seed=3))
    assert list(message_stream(300, seed=3)) != list(message_stream(300, seed=4))
    orders = {tuple(patient_of(m) for m in message_stream(20, patients=20, seed=s))
              for s in range(5)}
    assert len(orders) == 5
    assert adt_message(99, patient=5) == adt_message(99, patient=5)
    assert oru_message(99, results=7) == oru_message(99, results=7)


def test_patient_default_and_identity_are_stable():
    """If two messages name the same patient, then PID-3/5/7/8 match; other patients differ."""
    def identity(payload):
        pid = hl7.parse(decode(payload)).segment("PID")
        return tuple(str(pid(f)) for f in (3, 5, 7, 8))
    assert identity(adt_message(10)) == identity(adt_message(500, patient=10))
    assert identity(adt_message(10)) == identity(oru_message(900, patient=10))
    assert identity(adt_message(10)) != identity(adt_message(11))


def test_ins_is_unique_per_patient():
    """If two patients shared an INS, then identity reconciliation would merge them falsely."""
    patients = list(range(5000)) + list(range(5000, 7_600_000, 1531))
    nirs = set()
    for patient in patients:
        pid = adt_message(0, patient=patient).split(b"\rPID|", 1)[1].split(b"|", 3)[2]
        nirs.add(pid.split(b"~")[1].split(b"^")[0])
    assert len(nirs) == len(patients)
    assert all(nir_key_ok(nir.decode()) for nir in nirs)


def test_unknown_options_are_refused():
    """If asked for what it cannot write, then the generator says so instead of guessing."""
    with pytest.raises(ValueError, match="A40"):
        adt_message(1, trigger="A40")
    with pytest.raises(ValueError, match="KLINGON"):
        adt_message(1, encoding="KLINGON")
    with pytest.raises(ValueError):
        oru_message(1, results=0)
    with pytest.raises(ValueError):
        list(message_stream(1, kinds=("mdm",)))
    with pytest.raises(ValueError):
        list(message_stream(1, patients=0))


def test_generation_is_never_the_bottleneck():
    """If a message took more than ~0.2 ms to build, then the benchmark would measure us."""
    started = time.perf_counter()
    for n in range(2000):
        adt_message(n)
        oru_message(n)
    assert time.perf_counter() - started < 0.8
