"""
Traits and profiles to table rows and back, in one place.

The traits are stored as received (a reviewer sees what the sender wrote);
the profile is stored beside them as JSON so that a candidate read from the
store is compared without normalising its names again.

test-case-name: tests.identity.store.test_index
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from identity.matching.profile import Profile, profile
from identity.model import INS, INS_DOMAINS, IdentifierDomain, IdentityStatus, Sex, Traits

INS_BY_OID: dict[str, IdentifierDomain] = {d.oid: d for d in INS_DOMAINS}

TRAIT_FIELDS = ("birth_name", "used_name", "birth_date", "birth_place", "address",
                "postcode", "city", "phone")


def traits_row(traits: Traits) -> dict[str, Any]:
    """The id_traits columns of ``traits`` (person_id left to the caller)."""
    p = profile(traits)
    row = {name: getattr(traits, name) for name in TRAIT_FIELDS}
    row["first_names"] = json.dumps(list(traits.first_names), ensure_ascii=False)
    row["sex"] = traits.sex.value
    ins = traits.ins
    row["ins"] = ins.matricule if ins else None
    row["ins_domain"] = ins.domain.oid if ins else None
    row["ins_status"] = ins.status.value if ins else None
    row["family_norm"] = p.family
    row["profile"] = profile_json(p)
    return row


def row_traits(row: Mapping[str, Any]) -> Traits:
    """The Traits of an id_traits row."""
    ins = None
    if row["ins"]:
        ins = INS(row["ins"], INS_BY_OID[row["ins_domain"]], IdentityStatus(row["ins_status"]))
    return Traits(first_names=tuple(json.loads(row["first_names"] or "[]")), sex=Sex(row["sex"]),
                  ins=ins, **{name: row[name] for name in TRAIT_FIELDS})


def traits_dict(traits: Traits) -> dict[str, Any]:
    """Traits as plain data for history details, JSON output and the export."""
    data: dict[str, Any] = {name: getattr(traits, name) for name in TRAIT_FIELDS
                            if getattr(traits, name) is not None}
    data["first_names"] = list(traits.first_names)
    data["sex"] = traits.sex.value
    if traits.ins:
        data["ins"] = {"matricule": traits.ins.matricule, "domain": traits.ins.domain.oid,
                       "status": traits.ins.status.value}
    return data


def profile_json(p: Profile) -> str:
    """A profile as compact JSON; the INS as [matricule, domain OID, status]."""
    return json.dumps({
        "b": p.birth_forms, "u": p.used_forms, "k": p.family_keys, "f": p.first_forms,
        "fp": sorted(p.first_parts), "fk": p.first_keys, "d": p.birth_date, "s": p.sex,
        "bp": p.birth_place, "pc": p.postcode, "st": p.street, "ph": p.phone,
        "i": [p.ins.matricule, p.ins.domain.oid, p.ins.status.value] if p.ins else None,
    }, ensure_ascii=False, separators=(",", ":"))


def json_profile(text: str) -> Profile:
    """The profile :func:`profile_json` wrote."""
    d = json.loads(text)
    ins = d["i"] and INS(d["i"][0], INS_BY_OID[d["i"][1]], IdentityStatus(d["i"][2]))
    return Profile(
        birth_forms=tuple(d["b"]), used_forms=tuple(d["u"]), family_keys=tuple(d["k"]),
        first_forms=tuple(d["f"]), first_parts=frozenset(d["fp"]), first_keys=tuple(d["fk"]),
        birth_date=d["d"], sex=d["s"], birth_place=d["bp"], postcode=d["pc"], street=d["st"],
        phone=d["ph"], ins=ins or None,
    )
