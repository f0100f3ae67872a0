"""
The ``consent:`` block of a channel file: which field carries the patient's opposition to
sharing, which values oppose or withdraw it, and where the patient's identifiers are, validated
with file and line into an :class:`engine.flow.consent.ConsentPlan`.

The defaults are French PAM's (shared/standards/NOTES.md §3.4): ZFA-9, the information and
opposition to feeding the DMP, ``IO`` (informed, opposed) and ``INO`` (informed, not opposed);
``NA`` (not collected) changes nothing. An engineer whose senders carry it elsewhere (a PV2
or ZBE field of their own) names that path.

test-case-name: tests.flow.test_consent
"""
from __future__ import annotations

from typing import Any

from engine.config.schema import Problems, Section, Where, key_position, validate_section
from engine.config.yamlsource import YAMLMapping
from engine.flow.consent import (
    PAM_FR_NOT_OPPOSED, PAM_FR_OPPOSED, PAM_FR_OPPOSITION, PATIENT_FIELD, ConsentPlan)
from engine.interfaces import OptionSpec
from engine.store.consent import SHARED_RECORD

CONSENT_SECTION = Section(
    (OptionSpec("opposition", "str", default=PAM_FR_OPPOSITION,
                help="the path of the field that carries the opposition; empty: none read"),
     OptionSpec("values", "list", default=list(PAM_FR_OPPOSED),
                help="values of that field meaning the patient opposes"),
     OptionSpec("withdrawn", "list", default=list(PAM_FR_NOT_OPPOSED),
                help="values meaning the patient does not (any more) oppose"),
     OptionSpec("scope", "str", default=SHARED_RECORD, help="what is opposed"),
     OptionSpec("patient", "str", default=PATIENT_FIELD,
                help="the CX field listing the patient's identifiers")),
)


def consent_plan(root: YAMLMapping, where: Where, problems: Problems) -> ConsentPlan | None:
    """The channel's ``consent:`` block as a plan (``consent: {}``: French PAM's defaults);
    None when the channel has none."""
    raw = root.get("consent")
    if raw is None:
        return None
    here = where.child("consent", root.key_position("consent"))
    section = validate_section(raw, CONSENT_SECTION, here, problems)
    if section is None:
        return None
    opposition = _path(section["opposition"], raw, "opposition", here, problems)
    patient = _path(section["patient"], raw, "patient", here, problems)
    for key, path, example in (("opposition", opposition, "ZFA-9"),
                               ("patient", patient, "PID-3")):
        if path is not None and (path.field is None or path.names_group or path.groups):
            problems.add(here.child(key, key_position(raw, key)),
                         f"{key} must name a field of a segment ({example}), not {path}")
    opposed = _strings(section["values"], raw, "values", here, problems)
    withdrawn = _strings(section["withdrawn"], raw, "withdrawn", here, problems)
    if opposed & withdrawn:
        problems.add(here.child("withdrawn", key_position(raw, "withdrawn")),
                     f"{sorted(opposed & withdrawn)} both oppose and withdraw")
    return ConsentPlan(opposition, opposed, withdrawn, section["scope"], patient)


def _path(text: str | None, raw: Any, key: str, here: Where, problems: Problems) -> Any:
    if not text:
        return None
    from mappings.pathsyntax import PathError, parse_path

    try:
        return parse_path(text)
    except PathError as error:
        problems.add(here.child(key, key_position(raw, key)), str(error))
        return None


def _strings(items: list | None, raw: Any, key: str, here: Where,
             problems: Problems) -> frozenset[str]:
    if any(not isinstance(item, str) for item in items or ()):
        problems.add(here.child(key, key_position(raw, key)),
                     "expected a list of strings (quote values YAML would read otherwise)")
        return frozenset()
    return frozenset(items or ())


__all__ = ["CONSENT_SECTION", "consent_plan"]
