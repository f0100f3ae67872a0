"""
The French value sets ("jeux de valeurs", JDV) a DMP submission's coded
metadata must come from, and the check of a submission against them and
against the attributes the DMP requires beyond IHE (shared/standards/NOTES.md
§1.6, §5.1).

The value sets are read from the files ANS publishes (IHE SVS
``RetrieveValueSetResponse``, one JDV per file) in a configured folder,
because ANS revises them several times a year: loading refuses a folder that
lacks one of the required JDVs, so that a wrong folder is found when the
channel starts, not when the DMP rejects a submission. classCode (JDV_J06)
and formatCode (JDV_J10) fall back to the codes NOTES.md lists when their
files are absent; a file, when present, replaces the fallback.

test-case-name: tests.xds.dmp.test_values
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from xds.metadata import errors as codes
from xds.metadata.errors import RegistryError
from xds.metadata.model import Code, DocumentEntry, Submission
from xds.safexml import UnsafeXMLError, parse_xml

SVS = "urn:ihe:iti:svs:2008"
TRE_A03_CLASS = "1.2.250.1.213.1.1.4.1"
TRE_A06_FORMAT = "1.2.250.1.213.1.1.4.2.282"
IHE_FORMAT = "1.3.6.1.4.1.19376.1.2.3"
#: IHE DSG signature document codes (the DMP's submission-set signature; verify against JDV_J57/J60).
SIGNATURE_CLASS = Code("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN", "Digital Signature")
SIGNATURE_TYPE = Code("E1762", "ASTM", "Full Document")
SIGNATURE_FORMAT = Code("http://www.w3.org/2000/09/xmldsig#", "URN", "Default Signature Style")


@dataclass(frozen=True)
class ValueSet:
    """One JDV: its OID, its name, its (code, code system) pairs with display names."""

    oid: str
    name: str
    concepts: dict[tuple[str, str], str]

    def __contains__(self, code: Code) -> bool:
        return (code.code, code.scheme) in self.concepts

    def systems_of(self, code: str) -> list[str]:
        """The code systems in which *code* is in this set (to explain a wrong scheme)."""
        return sorted(system for value, system in self.concepts if value == code)


#: DocumentEntry attribute -> the CI-SIS JDV OID it draws from.
REQUIRED_VALUE_SETS = {
    "typeCode": "1.2.250.1.213.1.1.5.471",                    # JDV_J07
    "healthcareFacilityTypeCode": "1.2.250.1.213.1.1.5.466",  # JDV_J02
    "practiceSettingCode": "1.2.250.1.213.1.1.5.467",         # JDV_J04
    "confidentialityCode": "1.2.250.1.213.1.1.5.463",         # JDV_J08
}
OPTIONAL_VALUE_SETS = {
    "classCode": "1.2.250.1.213.1.1.5.462",                   # JDV_J06
    "formatCode": "1.2.250.1.213.1.1.5.465",                  # JDV_J10
}

_FALLBACK_CLASS = {(code, TRE_A03_CLASS): name for code, name in (
    ("10", "Compte rendu"), ("11", "Synthèse"), ("31", "Imagerie médicale"),
    ("42", "Prescription"), ("43", "Dispensation"), ("44", "Plan/protocole de soins"),
    ("45", "Traitement administré"), ("52", "Certificat/déclaration"),
    ("60", "Données de remboursement"), ("90", "Autres documents déposés par le patient"),
    ("95", "Document de gestion"), ("99", "Document technique"))}
_FALLBACK_FORMAT = {
    ("urn:asip:ci-sis:vsm:2012", TRE_A06_FORMAT): "VSM",
    ("urn:asip:ci-sis:ldl-ses:2017", TRE_A06_FORMAT): "LDL-SES",
    ("urn:asip:ci-sis:ldl-ees:2017", TRE_A06_FORMAT): "LDL-EES",
    ("urn:asip:ci-sis:vac-note:2021", TRE_A06_FORMAT): "VAC-NOTE",
    ("urn:ihe:lab:xd-lab:2008", IHE_FORMAT): "CR-BIO (XD-LAB)",
    ("urn:ihe:iti:xds-sd:pdf:2008", IHE_FORMAT): "Document non structuré PDF",
    ("urn:ihe:iti:xds-sd:text:2008", IHE_FORMAT): "Document non structuré texte",
}


class ValueSetError(ValueError):
    """The value-set folder is missing a JDV or holds a file that is no JDV."""


@dataclass(frozen=True)
class DMPValueSets:
    """The value set of each coded DocumentEntry attribute the DMP checks."""

    by_attribute: dict[str, ValueSet]

    def __getitem__(self, attribute: str) -> ValueSet:
        return self.by_attribute[attribute]


def read_value_set(data: bytes, where: str) -> ValueSet:
    """One SVS ``RetrieveValueSetResponse`` file's value set, or :class:`ValueSetError`."""
    try:
        root = parse_xml(data, what=where)
    except UnsafeXMLError as exc:
        raise ValueSetError(str(exc)) from None
    value_set = root.find(f"{{{SVS}}}ValueSet")
    if value_set is None or not value_set.get("id"):
        raise ValueSetError(f"{where} is not an SVS RetrieveValueSetResponse with a ValueSet id")
    concepts = {(concept.get("code", ""), concept.get("codeSystem", "")):
                concept.get("displayName", "")
                for concept in value_set.iter(f"{{{SVS}}}Concept")}
    name = value_set.get("displayName", "").removesuffix(".tabs")
    return ValueSet(value_set.get("id"), name, concepts)


def load_value_sets(folder: str | Path) -> DMPValueSets:
    """The DMP value sets from *folder*'s ``*.xml`` JDV files (blocking: at configuration time)."""
    found: dict[str, ValueSet] = {}
    for path in sorted(Path(folder).glob("*.xml")):
        value_set = read_value_set(path.read_bytes(), str(path))
        found[value_set.oid] = value_set
    missing = [f"{attribute} ({oid})" for attribute, oid in REQUIRED_VALUE_SETS.items()
               if oid not in found]
    if missing:
        raise ValueSetError(f"value-set folder {folder} lacks the JDV for " + ", ".join(missing))
    by_attribute = {attribute: found[oid] for attribute, oid in REQUIRED_VALUE_SETS.items()}
    fallbacks = {"classCode": ("JDV_J06 (fallback: TRE_A03 classes of NOTES.md)",
                               _FALLBACK_CLASS),
                 "formatCode": ("JDV_J10 (fallback: formats of NOTES.md)", _FALLBACK_FORMAT)}
    for attribute, oid in OPTIONAL_VALUE_SETS.items():
        name, concepts = fallbacks[attribute]
        by_attribute[attribute] = found.get(oid) or ValueSet(oid, name, dict(concepts))
    return DMPValueSets(_with_signature_codes(by_attribute))


def _with_signature_codes(by_attribute: dict[str, ValueSet]) -> dict[str, ValueSet]:
    """Accept the signature document's own class and format (its type is in JDV_J07)."""
    result = dict(by_attribute)
    for attribute, code in (("classCode", SIGNATURE_CLASS), ("formatCode", SIGNATURE_FORMAT)):
        value_set = result[attribute]
        concepts = {**value_set.concepts, (code.code, code.scheme): code.display}
        result[attribute] = ValueSet(value_set.oid, value_set.name, concepts)
    return result


_CODED = {"classCode": "class_code", "typeCode": "type_code", "formatCode": "format_code",
          "healthcareFacilityTypeCode": "healthcare_facility_type_code",
          "practiceSettingCode": "practice_setting_code"}
#: Attributes that are optional in IHE but 1..1 in the ANS DMP logical model.
_DMP_REQUIRED = {"title": "title", "legal_authenticator": "legalAuthenticator",
                 "service_start_time": "serviceStartTime", "source_patient_info": "sourcePatientInfo",
                 "authors": "author"}
MAX_CONFIDENTIALITY_CODES = 4


def check_values(submission: Submission, value_sets: DMPValueSets) -> list[RegistryError]:
    """What in *submission* the DMP would refuse for its codes or missing attributes."""
    findings = []
    for entry in submission.documents:
        findings.extend(_check_entry(entry, value_sets))
    return findings


def _check_entry(entry: DocumentEntry, value_sets: DMPValueSets) -> Iterator[RegistryError]:
    where = f"DocumentEntry {entry.entry_uuid!r}"
    for attribute, field_name in _CODED.items():
        code = getattr(entry, field_name)
        if code is not None:
            problem = _code_problem(code, value_sets[attribute])
            if problem:
                yield _error(f"{where}: {attribute} {problem}", entry.entry_uuid)
    for code in entry.confidentiality_codes:
        problem = _code_problem(code, value_sets["confidentialityCode"])
        if problem:
            yield _error(f"{where}: confidentialityCode {problem}", entry.entry_uuid)
    if len(entry.confidentiality_codes) > MAX_CONFIDENTIALITY_CODES:
        yield _error(f"{where} has {len(entry.confidentiality_codes)} confidentialityCodes;"
                     f" the DMP accepts at most {MAX_CONFIDENTIALITY_CODES}", entry.entry_uuid)
    for field_name, attribute in _DMP_REQUIRED.items():
        if not getattr(entry, field_name):
            yield _error(f"{where} has no {attribute}, which the DMP requires (1..1)",
                         entry.entry_uuid)


def _code_problem(code: Code, value_set: ValueSet) -> str:
    """Why *code* is refused by *value_set*, or "" when it is in it."""
    if code in value_set:
        return ""
    label = f"{value_set.name} ({value_set.oid})"
    systems = value_set.systems_of(code.code)
    if systems:
        return (f"{code.code!r} has codingScheme {code.scheme!r}; in {label} it belongs to"
                f" {', '.join(systems)}")
    return f"{code.code!r} (codingScheme {code.scheme!r}) is not in {label}"


def _error(message: str, location: str) -> RegistryError:
    return RegistryError(codes.REGISTRY_METADATA_ERROR, message, location)
