"""
The xds destination's ``affinity_domain:`` and ``dmp:`` (engine/identity/xds.py): the options
checked when the destination is built (each mistake named), and the ``patient_id`` lookup on
the real index (SQLite and PostgreSQL, the ``engine`` fixture of this folder).
"""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from channels.xds_destination import XDSDestination
from engine.config.identity import IdentityConfig
from engine.identity.xds import PatientLookup, XDSWiring, parse_cx
from engine.interfaces import ConnectorConfig, DeliveryFailed
from identity.model import (
    INS, INS_NIR_TEST, IdentifierDomain, IdentityStatus, LocalIdentifier, Sex, Traits)
from identity.store.service import StoreIdentityIndex
from tests.identity.hl7.conformance import CHU, GHT
from tests.xds.dmp.pki import STRUCTURE_ID, pki
from tests.standards import standards_dir

CONFIG = IdentityConfig((CHU, GHT), GHT)
MATRICULE = "279035121518989"
URL = "http://127.0.0.1:9/repository"


def connector(tmp_path, **options) -> ConnectorConfig:
    return ConnectorConfig("xds", "out", {"url": URL, **options},
                           str(tmp_path / "channels" / "lab.yaml"), 12)


def dmp_block(tmp_path) -> dict:
    """A complete dmp: block whose files are written under tmp_path/channels/dmp."""
    folder = tmp_path / "channels" / "dmp"
    folder.mkdir(parents=True, exist_ok=True)
    paths = pki().write(folder)
    jdv = folder / "jdv"
    if not jdv.exists():
        shutil.copytree(standards_dir() / "terminology" / "ans-jdv", jdv)
    return {"certificate": f"dmp/{paths['certificate'].name}", "key": f"dmp/{paths['key'].name}",
            "structure_id": STRUCTURE_ID,
            "activity_sector": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"},
            "software": {"name": "Aiguillage", "version": "0.1.0"},
            "practitioner": {"identifier": "801234567897", "name": "DAVID Charles",
                             "roles": [{"code": "10", "scheme": "1.2.250.1.213.1.1.4.5"}]},
            "value_sets": "dmp/jdv"}


def wiring() -> XDSWiring:
    return XDSWiring(lambda: CONFIG)


def test_an_affinity_domain_becomes_the_patient_id_hook(tmp_path):
    """If affinity_domain names a domain of engine.yaml, the destination gets a patient_id hook
    and no prepare_request, and builds."""
    wired = wiring().connector(connector(tmp_path, affinity_domain="GHT-ARVERNE"))
    assert callable(wired.options["patient_id"]) and wired.options["prepare_request"] is None
    assert wired.options["patient_id"].__self__.domain == GHT
    XDSDestination("out", "lab", 0, wired.options, None)


def test_an_affinity_domain_may_be_given_by_oid(tmp_path):
    wired = wiring().connector(connector(tmp_path, affinity_domain=CHU.oid))
    assert wired.options["patient_id"].__self__.domain == CHU


def test_the_lookup_reads_engine_yaml_identity_as_reloaded(tmp_path):
    """If a reload gives the affinity domain's namespace another OID, then the lane built
    before it looks the patient up in the new one (the lookup reads the config each time)."""
    current = [CONFIG]
    wired = XDSWiring(lambda: current[0]).connector(connector(tmp_path,
                                                              affinity_domain="GHT-ARVERNE"))
    moved = IdentifierDomain("1.2.250.1.999.2.9", "GHT-ARVERNE")
    current[0] = IdentityConfig((CHU, moved), moved)
    assert wired.options["patient_id"].__self__.domain == moved


def test_an_unknown_affinity_domain_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"affinity_domain 'NOWHERE' is not a domain of "
                                         r"engine.yaml's identity: section \(known: CHU-EXEMPLE"):
        wiring().connector(connector(tmp_path, affinity_domain="NOWHERE"))


def test_a_hook_given_beside_the_options_is_refused(tmp_path):
    with pytest.raises(ValueError, match="patient_id cannot be given with affinity_domain"):
        wiring().connector(connector(tmp_path, affinity_domain="CHU-EXEMPLE",
                                     patient_id="os:getcwd"))


def test_a_destination_built_without_the_wiring_refuses_the_options(tmp_path):
    """If the channel's connector accepted dmp: unwired, a DMP would get unsigned requests."""
    with pytest.raises(ValueError, match="dmp must be turned into hooks by the engine"):
        XDSDestination("out", "lab", 0, {"url": URL, "dmp": {"certificate": "x"}}, None)


def test_a_dmp_block_becomes_both_hooks(tmp_path):
    wired = wiring().connector(connector(tmp_path, dmp=dmp_block(tmp_path)))
    assert callable(wired.options["patient_id"]) and callable(wired.options["prepare_request"])
    assert wired.options["patient_id"].__self__.toward_dmp
    XDSDestination("out", "lab", 0, wired.options, None)


@pytest.mark.parametrize("change, message", [
    ({"value_sets": "dmp/missing"}, "dmp.value_sets"),
    ({"certificate": "dmp/none.pem"}, "none.pem"),
    ({"practitioner": {"identifier": "1", "name": "X", "roles": []}},
     "dmp.practitioner.roles: at least one role"),
    ({"key_password_env": "AIGUILLAGE_NO_SUCH_VARIABLE"}, "the environment has no"),
])
def test_a_bad_dmp_block_is_refused_naming_the_key(tmp_path, change, message):
    block = {**dmp_block(tmp_path), **change}
    with pytest.raises(ValueError) as raised:
        wiring().connector(connector(tmp_path, dmp=block))
    assert str(raised.value).startswith('destination "out" (xds): ') and message in str(raised.value)


def test_a_dmp_with_a_local_affinity_domain_is_refused(tmp_path):
    with pytest.raises(ValueError, match="toward the DMP the patientId is the qualified INS"):
        wiring().connector(connector(tmp_path, dmp=dmp_block(tmp_path),
                                     affinity_domain="CHU-EXEMPLE"))


def test_check_config_reports_a_bad_dmp_block_at_the_destination_line(tmp_path):
    """If the dmp files are checked only at the first delivery, a broken cachet goes unseen."""
    from engine.app import check_connectors, load_config

    (tmp_path / "channels").mkdir()
    (tmp_path / "engine.yaml").write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/a.db'}}\nchannels: [channels/*.yaml]\n"
        "identity:\n  domains: [{namespace: CHU-EXEMPLE, oid: 1.2.250.1.999.1.1}]\n")
    (tmp_path / "channels" / "lab.yaml").write_text(
        "name: lab\nsource: {type: mllp, host: 127.0.0.1, port: 0}\ndestinations:\n"
        f"  - name: dmp\n    type: xds\n    url: {URL}\n"
        "    dmp: {certificate: dmp/cachet.pem, key: dmp/cachet.key}\n")
    problems = check_connectors(load_config(str(tmp_path / "engine.yaml")), None)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/channels/lab.yaml:4: destination \"dmp\" (xds): ")
    assert problems[0].endswith("dmp.software: expected a mapping, got NoneType")


def test_parse_cx_finds_the_domain_by_oid_then_namespace():
    assert parse_cx(f"42^^^&{CHU.oid}&ISO", CONFIG) == LocalIdentifier(CHU, "42")
    assert parse_cx("42^^^GHT-ARVERNE", CONFIG) == LocalIdentifier(GHT, "42")
    assert parse_cx("42", CONFIG) is None and parse_cx("42^^^ELSEWHERE", CONFIG) is None


# -- the lookup on the real index ------------------------------------------------------------

def person(index, status: IdentityStatus | None, *identifiers: LocalIdentifier) -> None:
    ins = None if status is None else INS(MATRICULE, INS_NIR_TEST, status)
    index.register(identifiers, Traits("DUBOIS", ("Dominique",), "19790328", Sex.FEMALE,
                                       ins=ins), cause="operator:test")


def lookup(engine, domain=None, toward_dmp=False) -> PatientLookup:
    index = StoreIdentityIndex(engine)
    return PatientLookup(lambda: index, lambda: CONFIG, domain and domain.oid,
                         toward_dmp=toward_dmp, url=URL)


DELIVERY = SimpleNamespace(delivery_id=7)


def test_the_lookup_gives_the_identifier_in_the_affinity_domain(engine):
    person(StoreIdentityIndex(engine), None, LocalIdentifier(CHU, "A1"), LocalIdentifier(GHT, "G1"))
    assert lookup(engine, GHT).resolve(f"A1^^^&{CHU.oid}&ISO", DELIVERY) == \
        f"G1^^^&{GHT.oid}&ISO"


def test_no_identifier_in_the_affinity_domain_is_refused_for_good(engine):
    person(StoreIdentityIndex(engine), None, LocalIdentifier(CHU, "A1"))
    with pytest.raises(DeliveryFailed) as raised:
        lookup(engine, GHT).resolve(f"A1^^^&{CHU.oid}&ISO", DELIVERY)
    assert not raised.value.retryable
    assert "XDSUnknownPatientId" in str(raised.value)
    assert "no identifier in the affinity domain GHT-ARVERNE (1.2.250.1.999.2.1)" in str(raised.value)


def test_a_patient_unknown_to_the_index_is_refused_for_good(engine):
    with pytest.raises(DeliveryFailed) as raised:
        lookup(engine, GHT).resolve(f"Z9^^^&{CHU.oid}&ISO", DELIVERY)
    assert not raised.value.retryable
    assert "XDSUnknownPatientId: no person of the identity index holds Z9 in CHU-EXEMPLE" \
        in str(raised.value)


def test_toward_the_dmp_the_qualified_ins_is_sent_and_its_status_kept(engine):
    person(StoreIdentityIndex(engine), IdentityStatus.QUALIFIED, LocalIdentifier(CHU, "A1"))
    found = lookup(engine, toward_dmp=True)
    assert found.resolve(f"A1^^^&{CHU.oid}&ISO", DELIVERY) == \
        f"{MATRICULE}^^^&{INS_NIR_TEST.oid}&ISO^NH"
    assert found.status_for(DELIVERY) == "QUAL" and found.status_for(DELIVERY) == ""


@pytest.mark.parametrize("status", [IdentityStatus.VALIDATED, IdentityStatus.PROVISIONAL, None])
def test_toward_the_dmp_an_ins_not_qualified_is_refused_for_good(engine, status):
    person(StoreIdentityIndex(engine), status, LocalIdentifier(CHU, "A1"))
    with pytest.raises(DeliveryFailed) as raised:
        lookup(engine, toward_dmp=True).resolve(f"A1^^^&{CHU.oid}&ISO", DELIVERY)
    assert not raised.value.retryable
    text = str(raised.value)
    assert text.startswith(f"not sent to {URL}: XDSRegistryMetadataError: patient A1^^^")
    assert ("not qualified: identity status " + status.value) in text if status else \
        "the patient has no INS" in text


def test_an_ins_as_patient_id_is_looked_up_by_the_entry_source_patient_id(engine):
    """If a CDA gave the INS as patientId (PID-32 QUAL), the index is asked for the local
    sourcePatientId of that entry; without one, the INS is refused as naming nobody."""
    person(StoreIdentityIndex(engine), IdentityStatus.QUALIFIED, LocalIdentifier(CHU, "A1"))
    ins_id = f"{MATRICULE}^^^&{INS_NIR_TEST.oid}&ISO^NH"
    entry = SimpleNamespace(patient_id=ins_id, source_patient_id=f"A1^^^&{CHU.oid}&ISO")
    found = lookup(engine, toward_dmp=True)
    assert found.resolve(ins_id, DELIVERY, SimpleNamespace(documents=[entry])) == ins_id
    with pytest.raises(DeliveryFailed, match="is an INS: an INS names nobody in the identity"):
        found.resolve(ins_id, DELIVERY, SimpleNamespace(documents=[]))
