"""
Reading an IHE XDM package (ITI-32 "Distribute Document Set on Media", the zip MSSanté
carries as IHE_XDM.ZIP): each submission set's METADATA.XML and the documents its
DocumentEntries point to, checked against their size and hash.

The zip comes from outside the trust boundary, so nothing in it is believed before it is
checked: an entry name with ``..``, an absolute path, a drive letter or a symbolic link is
refused (names are only looked up, never used as paths on disk); so are encrypted entries, too
many entries, an entry or a total larger than :class:`XDMLimits` allows, and a compression
ratio that only a zip bomb has. Sizes are counted while reading, not taken from the zip's
headers, which a hostile archive can fake. METADATA.XML is parsed with
:func:`xds.safexml.parse_xml` (no DTD, no entity, no network). Backslash separators, seen in
real packages (shared/standards/NOTES.md §2.1), are read as ``/``; names are matched without
regard to case, as ISO 9660 media are.

test-case-name: tests.xds.test_xdm
"""
from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO

from xds.metadata.errors import MetadataError
from xds.metadata.model import Submission
from xds.metadata.reading import read_submission
from xds.safexml import UnsafeXMLError, parse_xml

ROOT = "IHE_XDM"
METADATA = "METADATA.XML"
_CHUNK = 64 * 1024
_SYMLINK = 0o120000


class XDMError(ValueError):
    """The package is refused: hostile, over a limit, or not an XDM package."""


@dataclass(frozen=True)
class XDMLimits:
    """What a package may hold. ``max_ratio`` applies to entries over ``ratio_floor`` bytes
    (small files compress well legitimately)."""

    max_entries: int = 1000
    max_entry_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024
    max_ratio: int = 100
    ratio_floor: int = 1024 * 1024


@dataclass
class XDMSubset:
    """One submission set of the package: its folder, metadata and documents by entry id."""

    folder: str
    submission: Submission
    documents: dict[str, bytes] = field(default_factory=dict)


def safe_name(name: str) -> str:
    """The entry name with ``/`` separators, or :class:`XDMError` when it could point
    outside the package (absolute, a drive, ``..``)."""
    normal = name.replace("\\", "/")
    parts = normal.split("/")
    if normal.startswith("/") or (len(parts[0]) == 2 and parts[0][1] == ":") or ".." in parts:
        raise XDMError(f"zip entry {name!r} points outside the package (absolute path or ..): "
                       "refused")
    if "\x00" in normal:
        raise XDMError(f"zip entry {name!r} has a NUL character: refused")
    return posixpath.normpath(normal) if normal else normal


class _Package:
    """The checked index of a zip: normalised upper-case name -> ZipInfo."""

    def __init__(self, archive: zipfile.ZipFile, limits: XDMLimits):
        self.archive = archive
        self.limits = limits
        self.read_bytes = 0
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise XDMError(f"the zip has {len(infos)} entries, over the limit of "
                           f"{limits.max_entries}")
        self.entries: dict[str, zipfile.ZipInfo] = {}
        declared = 0
        for info in infos:
            name = safe_name(info.filename)
            self._check(info)
            declared += info.file_size
            key = name.upper()
            if key in self.entries and not info.is_dir():
                raise XDMError(f"zip entry {info.filename!r} appears twice: refused")
            self.entries[key] = info
        if declared > limits.max_total_bytes:
            raise XDMError(f"the zip unpacks to {declared} bytes, over the limit of "
                           f"{limits.max_total_bytes}")

    def _check(self, info: zipfile.ZipInfo) -> None:
        limits = self.limits
        if (info.external_attr >> 16) & 0o170000 == _SYMLINK:
            raise XDMError(f"zip entry {info.filename!r} is a symbolic link: refused")
        if info.flag_bits & 0x1:
            raise XDMError(f"zip entry {info.filename!r} is encrypted: refused")
        if info.file_size > limits.max_entry_bytes:
            raise XDMError(f"zip entry {info.filename!r} unpacks to {info.file_size} bytes, "
                           f"over the limit of {limits.max_entry_bytes}")
        if (info.file_size > limits.ratio_floor
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            raise XDMError(f"zip entry {info.filename!r} would expand {info.compress_size} "
                           f"bytes into {info.file_size} (over {limits.max_ratio}:1, a zip "
                           "bomb?): refused")

    def read(self, name: str) -> bytes:
        """An entry's bytes, counted as they are inflated (headers can lie)."""
        info = self.entries.get(name.upper())
        if info is None or info.is_dir():
            raise XDMError(f"the package has no file {name}")
        limit = min(self.limits.max_entry_bytes, info.file_size)
        chunks, size = [], 0
        try:
            with self.archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    self.read_bytes += len(chunk)
                    if size > limit or self.read_bytes > self.limits.max_total_bytes:
                        raise XDMError(f"zip entry {info.filename!r} inflates past the "
                                       f"{limit} bytes it declares or the package limit: "
                                       "refused")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as error:
            raise XDMError(f"zip entry {info.filename!r} cannot be read: {error}") from None
        return b"".join(chunks)

    def subsets(self) -> list[str]:
        """The folders ``IHE_XDM/<SUBSET>/`` that hold a METADATA.XML, in name order."""
        folders = []
        for key in sorted(self.entries):
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == ROOT and parts[2] == METADATA:
                folders.append(posixpath.dirname(safe_name(self.entries[key].filename)))
        return folders


def read_xdm(source: bytes | BinaryIO, limits: XDMLimits = XDMLimits()) -> list[XDMSubset]:
    """Every submission set of the XDM package ``source`` (bytes or a binary file) with its
    documents; :class:`XDMError` naming what is wrong and where."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as error:
        raise XDMError(f"not a zip file: {error}") from None
    with archive:
        package = _Package(archive, limits)
        folders = package.subsets()
        if not folders:
            raise XDMError(f"no {ROOT}/SUBSETnn/{METADATA} in the zip: not an XDM package")
        return [_subset(package, folder) for folder in folders]


def _subset(package: _Package, folder: str) -> XDMSubset:
    where = f"{folder}/{METADATA}"
    try:
        submission = read_submission(parse_xml(package.read(where), what=where))
    except UnsafeXMLError as error:
        raise XDMError(f"{where}: {error}") from None
    except MetadataError as error:
        raise XDMError(f"{where}: {error.errors[0].code_context}") from None
    subset = XDMSubset(folder, submission)
    for entry in submission.documents:
        if not entry.uri:
            raise XDMError(f"{where}: DocumentEntry {entry.entry_uuid} has no URI slot naming "
                           "its file")
        name = safe_name(posixpath.join(folder, entry.uri.replace("\\", "/")))
        if not name.upper().startswith(folder.upper() + "/"):
            raise XDMError(f"{where}: DocumentEntry {entry.entry_uuid} URI {entry.uri!r} "
                           "points outside its submission set: refused")
        data = package.read(name)
        _check_content(entry, data, where)
        subset.documents[entry.entry_uuid] = data
    return subset


def _check_content(entry, data: bytes, where: str) -> None:
    """The document's size and SHA-1 as METADATA.XML gives them (TF2-32 §3.32.4.1.4)."""
    if entry.size and entry.size.strip() != str(len(data)):
        raise XDMError(f"{where}: {entry.uri} is {len(data)} bytes, its DocumentEntry says "
                       f"size {entry.size}")
    digest = hashlib.sha1(data).hexdigest()
    if entry.hash and entry.hash.strip().lower() != digest:
        raise XDMError(f"{where}: {entry.uri} has SHA-1 {digest}, its DocumentEntry says "
                       f"hash {entry.hash}")


__all__ = ["XDMError", "XDMLimits", "XDMSubset", "read_xdm", "safe_name"]
