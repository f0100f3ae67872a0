"""Tests for xds.xdm: reading IHE XDM packages (the test's own and the samples kept in
shared/standards), and refusing hostile zips with a clear error. Pure: no reactor, no socket."""
from __future__ import annotations

import io
import zipfile

import pytest

from tests import standards
from tests.xds.xdm_builders import (
    DOCUMENT, bomb_zip, symlink_zip, traversal_zip, xdm_submission, xdm_zip)
from xds.xdm import XDMError, XDMLimits, read_xdm, safe_name


def test_a_package_built_here_is_read_with_its_documents():
    """If a package holds one submission set, then its metadata and the document its URI names
    come back, keyed by DocumentEntry id."""
    [subset] = read_xdm(xdm_zip())
    assert subset.folder == "IHE_XDM/SUBSET01"
    assert subset.submission.documents[0].unique_id == "1.2.250.1.999.1.1"
    assert subset.documents == {"Document01": DOCUMENT}


def test_backslash_separators_are_read_as_slashes():
    [subset] = read_xdm(xdm_zip(separator="\\"))
    assert subset.documents == {"Document01": DOCUMENT}


@pytest.mark.parametrize("sample,documents", [
    ("xdm/examples/Systelab_XDM.zip", 1), ("xdm/examples/XDM_SAMPLE4.zip", 1),
    ("xdm/examples/XDM_SAMPLE5.zip", 1)])
def test_the_ihe_and_vendor_samples_are_read(sample, documents):
    subsets = read_xdm(standards.sample(sample).read_bytes())
    assert sum(len(s.documents) for s in subsets) == documents


@pytest.mark.parametrize("sample,message", [
    ("xdm/examples/IHE_XDM.zip", "ebRS 2.1 metadata is not supported"),
    ("xdm/examples/Medisys_XDM.zip", "DOC0001.XML is 5916 bytes, its DocumentEntry says size"),
])
def test_samples_that_cannot_be_imported_say_why(sample, message):
    """If a sample uses XDS.a metadata or its metadata's size is wrong, then the error says so."""
    with pytest.raises(XDMError, match=message):
        read_xdm(standards.sample(sample).read_bytes())


@pytest.mark.parametrize("build,message", [
    (traversal_zip, "points outside the package"),
    (bomb_zip, "zip bomb"),
    (symlink_zip, "symbolic link"),
])
def test_hostile_packages_are_refused(build, message):
    with pytest.raises(XDMError, match=message):
        read_xdm(build())


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/x", "a/../../b", "..\\x"])
def test_names_that_leave_the_package_are_refused(name):
    with pytest.raises(XDMError, match="outside"):
        safe_name(name)


def test_limits_on_entries_and_sizes():
    data = xdm_zip()
    with pytest.raises(XDMError, match="entries, over the limit of 2"):
        read_xdm(data, XDMLimits(max_entries=2))
    with pytest.raises(XDMError, match="over the limit of 100"):
        read_xdm(data, XDMLimits(max_entry_bytes=100))
    with pytest.raises(XDMError, match="unpacks to .* over the limit of 2000"):
        read_xdm(data, XDMLimits(max_total_bytes=2000))


def test_a_size_lying_header_is_caught_while_inflating():
    """If an entry's headers declare fewer bytes than it inflates to, then reading it fails
    (at the declared size, or on its CRC) instead of believing the header."""
    spec = xdm_submission()
    spec.documents[0].size = spec.documents[0].hash = ""  # no metadata check to catch it
    honest = xdm_zip(spec)
    lying = honest.replace(len(DOCUMENT).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    assert lying != honest
    assert read_xdm(honest)[0].documents["Document01"] == DOCUMENT
    with pytest.raises(XDMError, match="DOC00001.XML"):
        read_xdm(lying)


def test_a_document_whose_hash_differs_from_its_metadata_is_refused():
    spec = xdm_submission()
    spec.documents[0].hash = "0" * 40
    with pytest.raises(XDMError, match="SHA-1 .* its DocumentEntry says hash 0000"):
        read_xdm(xdm_zip(spec))


@pytest.mark.parametrize("data,message", [
    (b"not a zip", "not a zip file"),
    (None, "no IHE_XDM/SUBSETnn/METADATA.XML"),
])
def test_not_an_xdm_package(data, message):
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("README.TXT", "hello")
        data = buffer.getvalue()
    with pytest.raises(XDMError, match=message):
        read_xdm(data)


def test_a_metadata_with_a_dtd_is_refused():
    bomb = (b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]>"
            b"<SubmitObjectsRequest>&lol;</SubmitObjectsRequest>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", bomb)
    with pytest.raises(XDMError, match="IHE_XDM/SUBSET01/METADATA.XML: .*DTD"):
        read_xdm(buffer.getvalue())


def test_each_submission_set_of_a_package_is_read():
    """If a package holds SUBSET01 and SUBSET02, then both come back, in order, each with the
    document its own folder holds (the same file name in both)."""
    from xds.metadata.writing import submit_objects_request
    from xds.safexml import to_bytes

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in (1, 2):
            data = DOCUMENT + str(number).encode()
            spec = xdm_submission(str(number), data)
            folder = f"IHE_XDM/SUBSET{number:02d}"
            archive.writestr(f"{folder}/METADATA.XML", to_bytes(submit_objects_request(spec)))
            archive.writestr(f"{folder}/DOC00001.XML", data)
    subsets = read_xdm(buffer.getvalue())
    assert [s.folder for s in subsets] == ["IHE_XDM/SUBSET01", "IHE_XDM/SUBSET02"]
    assert [s.documents["Document01"][-1:] for s in subsets] == [b"1", b"2"]
