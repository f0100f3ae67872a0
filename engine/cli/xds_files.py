"""
The file ``aiguillage xds submit`` sends, read and checked before any connection: a CDA R2
document (its submission derived from the header, :func:`xds.cda.submission.submission_from_cda`)
or an IHE XDM zip (each submission set, :func:`xds.xdm.read_xdm`, read safely).

test-case-name: tests.xds.test_xds_cli
"""
from __future__ import annotations

from typing import Any

ZIP_MAGIC = b"PK\x03\x04"
MAX_CDA_BYTES = 64 * 1024 * 1024


class SubmitFileError(ValueError):
    """The file cannot be submitted; ``usage`` when a setting is missing rather than the
    file at fault."""

    def __init__(self, text: str, usage: bool = False):
        super().__init__(text)
        self.usage = usage


def code(text: str | None, option: str) -> Any:
    """``code^^scheme`` as a :class:`xds.metadata.model.Code`, or None."""
    from xds.metadata.model import Code

    if not text:
        return None
    value, _, scheme = text.partition("^^")
    if not value or not scheme:
        raise SubmitFileError(f'{option} {text!r}: expected "code^^scheme"', usage=True)
    return Code(value, scheme)


def read_submissions(path: str, registry: Any, class_code: str | None = None,
                     content_type: str | None = None) -> list[tuple[Any, dict[str, bytes]]]:
    """The submissions in ``path``: one per XDM submission set, or one for a CDA."""
    with open(path, "rb") as file:
        head = file.read(4)
        file.seek(0)
        if head == ZIP_MAGIC:
            return _xdm(file)
        data = file.read(MAX_CDA_BYTES + 1)
    if len(data) > MAX_CDA_BYTES:
        raise SubmitFileError(f"over the {MAX_CDA_BYTES}-byte limit of a CDA document")
    return [_cda(data, registry, class_code, content_type)]


def _xdm(file: Any) -> list[tuple[Any, dict[str, bytes]]]:
    from xds.xdm import XDMError, read_xdm

    try:
        subsets = read_xdm(file)
    except XDMError as error:
        raise SubmitFileError(f"XDM package refused: {error}") from None
    return [(subset.submission, subset.documents) for subset in subsets]


def _cda(data: bytes, registry: Any, class_code: str | None,
         content_type: str | None) -> tuple[Any, dict[str, bytes]]:
    from xds.cda.header import CDAError
    from xds.cda.submission import submission_from_cda
    from xds.safexml import UnsafeXMLError
    from xds.transforms.mdm import SubmissionOptions

    if not registry.source_id:
        raise SubmitFileError(f"registry {registry.name} has no source_id (this Document "
                              "Source's OID) in engine.yaml", usage=True)
    options = SubmissionOptions(
        source_id=registry.source_id,
        class_code=code(class_code or registry.class_code, "--class-code"),
        content_type_code=code(content_type or registry.content_type_code, "--content-type"),
        healthcare_facility_type_code=code(registry.healthcare_facility_type_code,
                                           "healthcare_facility_type_code"),
        practice_setting_code=code(registry.practice_setting_code, "practice_setting_code"))
    try:
        made = submission_from_cda(data, options)
        return made.submission, made.documents
    except (CDAError, UnsafeXMLError) as error:
        raise SubmitFileError(f"not a CDA R2 document that can be submitted: {error}") from None
