"""Value formats of XDS.b metadata: each checker accepts the real thing and names the fault."""
from __future__ import annotations

import pytest

from xds.metadata import formats


@pytest.mark.parametrize("value", ["1.2.250.1.213.1.4.10", "2.16.840.1.113883.6.1", "0.0"])
def test_valid_oids(value):
    """If the value is an OID, then no problem is reported."""
    assert formats.oid_problem(value) is None


@pytest.mark.parametrize("value, fragment", [
    ("", "empty"), ("3.4.5", "first arc"), ("1", "first arc"), ("1.02.3", "arc '02'"),
    ("1.2.a", "arc 'a'"), ("1..2", "arc ''"), ("1." + "1" * 63, "over the 64"),
    ("1.2.٣", "arc '٣'"),
])
def test_invalid_oids(value, fragment):
    """If the value is not an OID, then the problem names what is wrong."""
    assert fragment in formats.oid_problem(value)


def test_unique_id_with_extension_only_where_allowed():
    """If a SubmissionSet uniqueId has ^extension, then it is refused; a document's may have it."""
    assert formats.unique_id_problem("1.2.3^abc", extension_allowed=True) is None
    assert "plain OID" in formats.unique_id_problem("1.2.3^abc", extension_allowed=False)
    assert "extension of 17" in formats.unique_id_problem("1.2.3^" + "x" * 17,
                                                          extension_allowed=True)
    assert "root is not an OID" in formats.unique_id_problem("x^1", extension_allowed=True)


@pytest.mark.parametrize("value", ["2019", "201912", "20191203", "2019120313",
                                   "201912031330", "20191203133059", "20240229"])
def test_valid_dtm(value):
    """If the value is a UTC DTM at any precision, then it is accepted."""
    assert formats.dtm_problem(value) is None


@pytest.mark.parametrize("value, fragment", [
    ("2019-12-03", "digits only"), ("20191203133000+0100", "no time zone"),
    ("201", "YYYY"), ("20191303", "real date"), ("20190230", "real date"),
    ("20230229", "real date"), ("2019120325", "real date"), ("201912031360", "real date"),
])
def test_invalid_dtm(value, fragment):
    """If the value is not a UTC DTM or not a real date, then the problem says so."""
    assert fragment in formats.dtm_problem(value)


@pytest.mark.parametrize("value", ["279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH",
                                   "ST-1000^^^&1.3.6.1.4.1.21367.2003.3.9&ISO",
                                   "X^^^NS&1.2.3&ISO"])
def test_valid_cx(value):
    """If the patient id is id^^^&OID&ISO (with an optional type), then it is accepted."""
    assert formats.cx_problem(value) is None


@pytest.mark.parametrize("value, fragment", [
    ("^^^&1.2.3&ISO", "CX.1"), ("123", "CX.4"), ("123^^^&1.2.3", "'&<OID>&ISO'"),
    ("123^^^&1.2.3&DNS", "'&<OID>&ISO'"), ("123^x^^&1.2.3&ISO", "CX.2 and CX.3 empty"),
    ("123^^^&3.4.5&ISO", "CX.4 OID is not an OID"),
])
def test_invalid_cx(value, fragment):
    """If the patient id is not a well-formed CX, then the problem names the component."""
    assert fragment in formats.cx_problem(value)


def test_xcn():
    """If neither XCN.1 nor XCN.2 is given, or XCN.9 is not an ISO OID, then it is refused."""
    assert formats.xcn_problem("801234567897^DAVID^Charles^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS") \
        is None
    assert formats.xcn_problem("^Smitty^Gerald") is None
    assert "neither" in formats.xcn_problem("^^Gerald")
    assert "XCN.9" in formats.xcn_problem("123^DAVID^^^^^^^&bad&ISO")


def test_xon():
    """If XON.1 is empty, or XON.10 is not an OID and XON.6 is missing, then it is refused."""
    assert formats.xon_problem("Clinic") is None
    assert formats.xon_problem("HEGP^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750803447") is None
    assert formats.xon_problem("HEGP^^^^^^^^^1.2.3.4") is None
    assert "XON.1" in formats.xon_problem("^^^^^&1.2.3&ISO")
    assert "XON.6" in formats.xon_problem("HEGP^^^^^^IDNST^^^1750803447")


def test_hash_size_language_mime_entry_uuid():
    """If hash, size, language, MIME type or entryUUID are malformed, then each is refused."""
    assert formats.hash_problem("a" * 40) is None
    assert formats.hash_problem("A" * 40) is None
    assert "SHA-1" in formats.hash_problem("a" * 39)
    assert "SHA-1" in formats.hash_problem("g" * 40)
    assert formats.size_problem("0") is None
    assert "whole number" in formats.size_problem("-1")
    assert "whole number" in formats.size_problem("1.5")
    assert formats.language_problem("fr-FR") is None
    assert "language" in formats.language_problem("fr_FR")
    assert formats.mime_type_problem("application/pdf") is None
    assert "MIME" in formats.mime_type_problem("text/xml; charset=UTF-8")
    assert formats.entry_uuid_problem("Document01") is None
    assert formats.entry_uuid_problem("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1") is None
    assert "not a UUID" in formats.entry_uuid_problem("urn:uuid:nope")
