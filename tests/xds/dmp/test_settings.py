"""A DMP destination's ``dmp:`` settings read into credentials and a context template."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from tests.xds.dmp.pki import NOW, pki
from tests.standards import standards_dir
from xds.dmp.settings import DMPSettingsError, read_dmp_settings
from xds.metadata.model import Code


@pytest.fixture()
def options(pki_files):
    return {
        "certificate": str(pki_files["certificate"]), "key": str(pki_files["key"]),
        "chain": str(pki_files["ca"]), "structure_id": "1750803447",
        "activity_sector": {"code": "SA01", "scheme": "1.2.250.1.71.4.2.4"},
        "software": {"name": "Aiguillage", "version": "0.1.0", "homologation": "H-1"},
        "practitioner": {"identifier": "801234567897", "name": "DUPONT Jean, DSI",
                         "roles": [{"code": "10", "scheme": "1.2.250.1.213.1.1.4.5",
                                    "display": "Médecin"}]},
        "value_sets": str(standards_dir() / "terminology" / "ans-jdv"),
    }


def test_settings_give_credentials_and_a_context(options, tmp_path):
    """If a key were misread, the VIHF or the signatures would say the wrong thing."""
    settings = read_dmp_settings(options, tmp_path, now=NOW)
    assert settings.credentials.certificates == (pki().structure.certificate, pki().ca.certificate)
    assert settings.credentials.activity_sector == Code("SA01", "1.2.250.1.71.4.2.4")
    assert settings.credentials.software.homologation == "H-1"
    assert settings.context.practitioner.roles == (Code("10", "1.2.250.1.213.1.1.4.5", "Médecin"),)
    assert settings.context.vihf_lifetime.total_seconds() == 300
    message = settings.for_message(identity_status="QUAL")
    assert (message.identity_status, message.practitioner) == ("QUAL",
                                                               settings.context.practitioner)


def test_relative_paths_are_under_the_configuration(options, pki_files):
    """If relative paths were taken from the working directory, a service would not start."""
    options.update(certificate=pki_files["certificate"].name, key=pki_files["key"].name,
                   chain=pki_files["ca"].name)
    settings = read_dmp_settings(options, pki_files["ca"].parent, now=NOW)
    assert settings.credentials.structure_id == "1750803447"


@pytest.mark.parametrize("change, message", [
    ({"structure_id": None}, "dmp.structure_id is required"),
    ({"activity_sector": {"code": "SA01"}}, "dmp.activity_sector.scheme is required"),
    ({"practitioner": {"identifier": "8", "name": "x", "roles": []}},
     "dmp.practitioner.roles: at least one role"),
    ({"practitioner": {"identifier": "8", "name": "x", "roles": [{"code": "10"}]}},
     r"dmp.practitioner.roles\[0\].scheme is required"),
    ({"vihf_lifetime_seconds": "5"}, "dmp.vihf_lifetime_seconds: expected a positive integer"),
    ({"security_must_understand": "no"}, "expected true or false"),
    ({"key_password_env": "NO_SUCH_VARIABLE"}, "the environment has no NO_SUCH_VARIABLE"),
    ({"key": "/nowhere/cachet.key"}, "dmp: private key /nowhere/cachet.key"),
    ({"value_sets": "/nowhere"}, "dmp.value_sets: value-set folder /nowhere lacks"),
    ({"software": "Aiguillage"}, "dmp.software: expected a mapping"),
])
def test_bad_settings_name_their_key(options, tmp_path, change, message):
    """If an error did not name its key, the operator would have to guess what to fix."""
    options.update(change)
    with pytest.raises(DMPSettingsError, match=message):
        read_dmp_settings(options, tmp_path, environ={}, now=NOW)


def test_key_password_comes_from_the_environment(options, tmp_path):
    """If the password variable were ignored, an encrypted cachet key could not be used."""
    encrypted = tmp_path / "cachet.key"
    encrypted.write_bytes(pki().structure.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    options.update(key=str(encrypted), key_password_env="DMP_KEY_PASSWORD")
    settings = read_dmp_settings(options, tmp_path, environ={"DMP_KEY_PASSWORD": "s3cret"},
                                 now=NOW)
    assert settings.credentials.certificate == pki().structure.certificate
