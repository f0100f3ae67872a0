"""
Validation of an INS matricule (NIR or NIA): 13 characters and a 2-digit key.

``shared/standards/NOTES.md`` §4 gives the shape (15 characters, 13 + a 2-digit
key). The key is the INSEE control key, ``97 - (N mod 97)`` where N is the
13-character number read in base 10, with the Corsican departments ``2A`` and
``2B`` (positions 6-7) read as ``19`` and ``18``. Both INS of the ANS HL7 v2
samples satisfy it (tests/identity/test_nir.py reads them).

A wrong key is the usual mark of a mistyped digit, so a matricule that fails
it must not be used to link anyone.

test-case-name: tests.identity.test_nir
"""
from __future__ import annotations

_CORSICA = {"2A": "19", "2B": "18"}


class InvalidNIR(ValueError):
    """A matricule that is not 13 characters and a valid key; the message says why."""


def _digits(body: str) -> int:
    """The 13 characters as the number the key is computed on."""
    department = body[5:7].upper()
    if department in _CORSICA:
        body = body[:5] + _CORSICA[department] + body[7:]
    if not body.isdigit():
        raise InvalidNIR(f"NIR {body!r}: characters other than digits (and 2A/2B at 6-7)")
    return int(body)


def nir_key(body: str) -> int:
    """The control key of a 13-character NIR or NIA body."""
    if len(body) != 13:
        raise InvalidNIR(f"NIR body {body!r}: {len(body)} characters, 13 expected")
    return 97 - _digits(body) % 97


def check_nir(matricule: str) -> str:
    """Return the matricule, upper-cased, if it is 15 characters with a valid key.

    Raises :class:`InvalidNIR` naming what is wrong. Spaces are refused rather
    than stripped: where they come from, other mistakes come too.
    """
    value = matricule.upper()
    if len(value) != 15:
        raise InvalidNIR(f"NIR {matricule!r}: {len(value)} characters, 15 expected")
    key = value[13:]
    if not key.isdigit():
        raise InvalidNIR(f"NIR {matricule!r}: key {key!r} is not two digits")
    expected = nir_key(value[:13])
    if int(key) != expected:
        raise InvalidNIR(f"NIR {matricule!r}: key {key} does not match, {expected:02d} expected")
    return value
