"""
Tests for identity.model.nir: the INS matricule and its control key.
"""
from __future__ import annotations

import pytest

from identity.model import InvalidNIR, check_nir, nir_key


def _sample_matricules(standards) -> set[str]:
    """The INS matricules of the ANS HL7 v2 samples: PID-3 repetitions typed INS."""
    found = set()
    paths = [p for p in (standards / "hl7v2").rglob("*") if p.suffix in (".hl7", ".er7")]
    for path in paths:
        for segment in path.read_text(encoding="utf-8", errors="replace").replace("\n", "\r").split("\r"):
            fields = segment.split("|")
            if fields[0] != "PID" or len(fields) < 4:
                continue
            for repetition in fields[3].split("~"):
                components = repetition.split("^")
                if len(components) > 4 and components[4] == "INS":
                    found.add(components[0])
    return found


def test_ans_sample_matricules_have_valid_keys(standards):
    """If a matricule comes from the ANS samples, then its key checks."""
    matricules = _sample_matricules(standards)
    assert len(matricules) >= 2
    for matricule in matricules:
        assert check_nir(matricule) == matricule


def test_one_wrong_digit_is_refused():
    """If one digit of a valid matricule is changed, then the key no longer matches."""
    body = "2790351215189"
    valid = f"{body}{nir_key(body):02d}"
    wrong = ("3" if valid[4] != "3" else "4").join((valid[:4], valid[5:]))
    with pytest.raises(InvalidNIR, match="key"):
        check_nir(wrong)


def test_two_swapped_digits_are_refused():
    """If two adjacent different digits are swapped, then the key no longer matches."""
    body = "1850775123456"
    valid = f"{body}{nir_key(body):02d}"
    swapped = valid[:1] + valid[2] + valid[1] + valid[3:]
    assert swapped != valid
    with pytest.raises(InvalidNIR):
        check_nir(swapped)


def test_corsica_departments_read_as_19_and_18():
    """If the department is 2A or 2B, then the key is computed with 19 or 18 in its place."""
    assert nir_key("18507" + "2A" + "004123") == 97 - int("18507" + "19" + "004123") % 97
    assert nir_key("18507" + "2B" + "004123") == 97 - int("18507" + "18" + "004123") % 97
    body = "18507" + "2a" + "004123"
    assert check_nir(f"{body}{nir_key(body.upper()):02d}") == f"{body.upper()}{nir_key(body.upper()):02d}"


@pytest.mark.parametrize("value, complaint", [
    ("27903512151898", "14 characters"),
    ("2790351215189899", "16 characters"),
    ("27903512151X989", "digits"),
    ("2790351215189AB", "key"),
])
def test_malformed_matricules_are_named(value, complaint):
    """If a matricule is malformed, then the error says what is wrong with it."""
    with pytest.raises(InvalidNIR, match=complaint):
        check_nir(value)
