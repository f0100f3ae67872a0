"""Loading the structure's cachet certificate and key, and refusing what cannot sign."""
from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.xds.dmp.pki import NOW, SECTOR, SOFTWARE, STRUCTURE_ID, pki
from xds.dmp.credentials import CredentialsError, load_credentials, make_credentials


def _load(paths, **overrides):
    arguments = dict(structure_id=STRUCTURE_ID, activity_sector=SECTOR, software=SOFTWARE,
                     now=NOW)
    arguments.update(overrides)
    return load_credentials(paths["certificate"], paths["key"], **arguments)


def test_loads_certificate_and_key_files(pki_files):
    """If loading lost the chain or the ids, then the VIHF Issuer and attributes would be wrong."""
    credentials = _load(pki_files)
    assert credentials.certificate == pki().structure.certificate
    assert credentials.subject_dn.startswith("CN=Cachet H")
    assert credentials.structure_id == STRUCTURE_ID


def test_chain_file_follows_the_signer(pki_files):
    """If the chain file were ignored, then an intermediate CA could not be sent."""
    credentials = _load(pki_files, chain_file=pki_files["ca"])
    assert credentials.certificates == (pki().structure.certificate, pki().ca.certificate)


def test_key_of_another_certificate_is_refused(pki_files, tmp_path):
    """If a mismatched key were accepted, then every signature would fail at the DMP."""
    other = tmp_path / "other.key"
    other.write_bytes(pki().wrong.key_pem())
    with pytest.raises(CredentialsError, match="does not match the certificate CN=Cachet"):
        load_credentials(pki_files["certificate"], other, structure_id=STRUCTURE_ID,
                         activity_sector=SECTOR, software=SOFTWARE, now=NOW)


def test_expired_certificate_is_refused(pki_files):
    """If an expired certificate were accepted, then the DMP would refuse every call."""
    later = NOW + datetime.timedelta(days=20 * 365)
    with pytest.raises(CredentialsError, match="is valid from .* not on"):
        _load(pki_files, now=later)


def test_non_rsa_key_is_refused():
    """If an EC key were accepted, then the RSA-SHA256 signatures could not be made."""
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CredentialsError, match="must be RSA"):
        make_credentials(key, [pki().structure.certificate], structure_id=STRUCTURE_ID,
                         activity_sector=SECTOR, software=SOFTWARE, now=NOW)


def test_missing_files_are_named(tmp_path, pki_files):
    """If the error did not name the file, then the operator could not fix the config."""
    with pytest.raises(CredentialsError, match="nowhere.pem"):
        load_credentials(tmp_path / "nowhere.pem", pki_files["key"], structure_id=STRUCTURE_ID,
                         activity_sector=SECTOR, software=SOFTWARE, now=NOW)
    with pytest.raises(CredentialsError, match="nokey.pem"):
        load_credentials(pki_files["certificate"], tmp_path / "nokey.pem",
                         structure_id=STRUCTURE_ID, activity_sector=SECTOR, software=SOFTWARE,
                         now=NOW)


def test_encrypted_key_needs_its_password(pki_files, tmp_path):
    """If the password were not used, then an encrypted key file could not be configured."""
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(pki().structure.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    paths = {**pki_files, "key": encrypted}
    assert _load(paths, key_password=b"secret").certificate == pki().structure.certificate
    with pytest.raises(CredentialsError, match="encrypted.key"):
        _load(paths)


def test_empty_structure_id_is_refused(pki_files):
    """If the structure id could be empty, then the VIHF would lack Identifiant_Structure."""
    with pytest.raises(CredentialsError, match="structure_id"):
        _load(pki_files, structure_id="")
