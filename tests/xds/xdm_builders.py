"""XDM zips built by the tests: a valid package from the builders' submission, and hostile ones
(path traversal, a zip bomb, a symbolic link) for the reader to refuse."""
from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace

from tests.xds.builders import submission
from xds.metadata.writing import submit_objects_request
from xds.safexml import to_bytes

DOCUMENT = (b"<?xml version='1.0' encoding='UTF-8'?>\n<ClinicalDocument xmlns='urn:hl7-org:v3'>"
            + b"<title>XDM</title>" * 50 + b"</ClinicalDocument>")


def xdm_submission(unique_suffix: str = "1", data: bytes = DOCUMENT):
    """The builders' one-document submission, with uniqueIds of its own and URI DOC00001.XML."""
    spec = submission()
    spec.submission_sets[0] = replace(spec.submission_sets[0],
                                      unique_id=f"1.2.250.1.999.2.{unique_suffix}")
    spec.documents[0] = replace(spec.documents[0], unique_id=f"1.2.250.1.999.1.{unique_suffix}",
                                uri="DOC00001.XML", hash=hashlib.sha1(data).hexdigest(),
                                size=str(len(data)))
    return spec


def xdm_zip(spec=None, data: bytes = DOCUMENT, *, separator: str = "/",
            extra: dict[str, bytes] | None = None) -> bytes:
    """An IHE XDM zip: INDEX.HTM, README.TXT, IHE_XDM/SUBSET01/METADATA.XML and the document."""
    spec = spec or xdm_submission(data=data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("INDEX.HTM", "<html><body>XDM test package</body></html>")
        archive.writestr("README.TXT", "Aiguillage tests\r\n")
        folder = separator.join(["IHE_XDM", "SUBSET01"])
        archive.writestr(f"{folder}{separator}METADATA.XML", to_bytes(submit_objects_request(spec)))
        archive.writestr(f"{folder}{separator}DOC00001.XML", data)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def traversal_zip() -> bytes:
    return xdm_zip(extra={"IHE_XDM/SUBSET01/../../../etc/cron.d/evil": b"* * * * * root sh"})


def bomb_zip(size: int = 8 * 1024 * 1024) -> bytes:
    """A package whose extra entry inflates ``size`` zero bytes from a few kilobytes."""
    return xdm_zip(extra={"IHE_XDM/SUBSET01/ZEROS.BIN": bytes(size)})


def symlink_zip() -> bytes:
    buffer = io.BytesIO(xdm_zip())
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo("IHE_XDM/SUBSET01/LINK")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()
