"""
The metadata settings of a channel, as written in its YAML, read into
:class:`xds.transforms.mdm.SubmissionOptions`: what a document and its message do not say
(source id, class, format, facility type and practice setting codes, confidentiality,
language, repository id).

One reader for the ``cda-to-xds`` and ``mdm-to-xds`` transforms and the ``xds`` destination,
so that the same keys mean the same thing everywhere. A code is written as a mapping::

    class-code: {code: "11", scheme: 1.2.250.1.213.1.1.4.1, display: Compte rendu}

Every problem is collected, so that the loader reports them all at once.

test-case-name: tests.xds.test_payload
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from xds.metadata.model import Code
from xds.transforms.mdm import CONFIDENTIALITY, SubmissionOptions

__all__ = ["CODE_KEYS", "METADATA_KEYS", "MetadataOptionsError", "metadata_options"]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
#: key -> SubmissionOptions field, for the coded settings.
CODE_KEYS = {"class-code": "class_code", "type-code": "type_code",
             "format-code": "format_code", "content-type-code": "content_type_code",
             "healthcare-facility-code": "healthcare_facility_type_code",
             "practice-setting-code": "practice_setting_code"}
METADATA_KEYS = frozenset(CODE_KEYS) | {"source-id", "confidentiality", "language",
                                        "repository-id"}
_CONFIDENTIALITY_CODES = {"N": "Normal", "R": "Restricted", "V": "Very restricted"}


class MetadataOptionsError(ValueError):
    """The metadata settings are wrong; the text lists every problem."""


def metadata_options(values: Mapping[str, Any], *, source_id: str = "",
                     require_source_id: bool = True) -> SubmissionOptions:
    """:class:`SubmissionOptions` from *values* (the keys of :data:`METADATA_KEYS`).

    *source_id* is used when *values* has no ``source-id``. Raises
    :class:`MetadataOptionsError` naming each unknown key and bad value.
    """
    problems = [f"unknown metadata setting {key!r} (the settings are "
                f"{', '.join(sorted(METADATA_KEYS))})" for key in values
                if key not in METADATA_KEYS]
    source = str(values.get("source-id") or source_id or "")
    if source and not _OID.match(source):
        problems.append(f"source-id {source!r} is not an OID")
    elif not source and require_source_id:
        problems.append("source-id is missing: the OID of the Document Source is required")
    codes = {name: _code(key, values[key], problems)
             for key, name in CODE_KEYS.items() if values.get(key) is not None}
    confidentiality = _confidentiality(values.get("confidentiality", "N"), problems)
    repository = str(values.get("repository-id") or "")
    if repository and not _OID.match(repository):
        problems.append(f"repository-id {repository!r} is not an OID")
    if problems:
        raise MetadataOptionsError("; ".join(problems))
    return SubmissionOptions(source_id=source, confidentiality=confidentiality,
                             language_code=str(values.get("language") or "fr-FR"),
                             repository_unique_id=repository, **codes)


def _code(key: str, value: Any, problems: list[str]) -> Code | None:
    if not isinstance(value, Mapping) or not value.get("code") or not value.get("scheme"):
        problems.append(f"{key} must be a mapping with code and scheme (and display), "
                        f"got {value!r}")
        return None
    unknown = sorted(set(value) - {"code", "scheme", "display"})
    if unknown:
        problems.append(f"{key}: unknown key(s) {', '.join(unknown)}")
    return Code(str(value["code"]), str(value["scheme"]), str(value.get("display") or ""))


def _confidentiality(value: Any, problems: list[str]) -> Code:
    if isinstance(value, Mapping):
        return _code("confidentiality", value, problems) or Code("N", CONFIDENTIALITY)
    if str(value) not in _CONFIDENTIALITY_CODES:
        problems.append(f"confidentiality {value!r} is not one of N, R, V (or a code mapping)")
        return Code("N", CONFIDENTIALITY, "Normal")
    return Code(str(value), CONFIDENTIALITY, _CONFIDENTIALITY_CODES[str(value)])
