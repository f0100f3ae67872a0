"""
The built-in message transforms a channel names in its configuration, checked once at load.

Why a registry rather than a step: the ``steps:`` language edits an HL7 message in place,
while a transform such as ORU^R01 → CDA gives a different document (XML bytes) that the
flow then delivers. A channel writes, for instance::

    transform: {name: oru-to-cda, loinc-table: lab-loinc, custodian-oid: 1.2.250.1.999.1}

and the loader calls :func:`build_transform` with the channel's tables, which checks the
name, every option and the table, and raises :class:`TransformConfigError` listing every
problem, so that a bad channel is refused before it runs. The returned
:class:`MessageTransform` is then applied to each parsed message.

test-case-name: tests.mappings.test_transform_registry
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mappings.message import HL7Message
from mappings.tables import CodeTable
from mappings.transforms.oru_cda import ReportOptions, oru_to_cda

__all__ = ["HL7V2", "MessageTransform", "TRANSFORMS", "TransformConfigError", "build_transform"]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_ORU_OPTIONS = {"loinc-table", "document-root", "custodian-name", "custodian-oid",
                "confidentiality", "title"}
_CONFIDENTIALITY = {"N", "R", "V"}


class TransformConfigError(ValueError):
    """A channel's ``transform:`` is wrong; the text lists every problem."""


#: What a transform reading a parsed HL7 v2 message accepts (``MessageTransform.accepts``).
HL7V2 = "hl7v2"


@dataclass(frozen=True)
class MessageTransform:
    """A checked transform: ``apply(input)`` gives the document, of ``media_type``.

    ``accepts`` is :data:`HL7V2` (``apply`` takes an :class:`HL7Message`) or the media type
    of the bytes ``apply`` takes (``text/xml``: the CDA another transform made), so that
    transforms can follow one another (:mod:`mappings.transforms.chain`).
    """

    name: str
    media_type: str
    apply: Callable[[Any], bytes]
    accepts: str = HL7V2


def _oru_to_cda(options: Mapping[str, Any], tables: Mapping[str, CodeTable]) -> MessageTransform:
    problems = [f"unknown option {key!r} (the options are {', '.join(sorted(_ORU_OPTIONS))})"
                for key in options if key not in _ORU_OPTIONS]
    table_name = options.get("loinc-table")
    table = tables.get(table_name) if table_name else None
    if table_name and table is None:
        problems.append(f"loinc-table {table_name!r} is not one of the channel's tables "
                        f"({', '.join(sorted(tables)) or 'none'})")
    for key in ("document-root", "custodian-oid"):
        if key in options and not _OID.match(str(options[key])):
            problems.append(f"{key} {options[key]!r} is not an OID")
    confidentiality = str(options.get("confidentiality", "N"))
    if confidentiality not in _CONFIDENTIALITY:
        problems.append(f"confidentiality {confidentiality!r} is not one of N, R, V")
    if problems:
        raise TransformConfigError("transform 'oru-to-cda': " + "; ".join(problems))
    report = ReportOptions(
        document_root=str(options.get("document-root", "")),
        custodian_name=str(options.get("custodian-name", "")),
        custodian_oid=str(options.get("custodian-oid", "")),
        confidentiality=confidentiality,
        **({"title": str(options["title"])} if "title" in options else {}))
    return MessageTransform("oru-to-cda", "text/xml",
                            lambda message: oru_to_cda(message, table, report))


TRANSFORMS: dict[str, Callable[..., MessageTransform]] = {"oru-to-cda": _oru_to_cda}


def build_transform(config: Mapping[str, Any],
                    tables: Mapping[str, CodeTable] = {}) -> MessageTransform:
    """The transform ``config`` names (``{name: …, option: …}``), its options checked."""
    if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
        raise TransformConfigError("transform needs a name, such as {name: oru-to-cda}")
    name = config["name"]
    factory = TRANSFORMS.get(name)
    if factory is None:
        raise TransformConfigError(f"unknown transform {name!r}; the transforms are "
                                   f"{', '.join(sorted(TRANSFORMS))}")
    return factory({key: value for key, value in config.items() if key != "name"}, tables)
