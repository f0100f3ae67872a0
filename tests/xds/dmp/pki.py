"""A throwaway PKI made by the tests: a CA, the structure's cachet certificate
signed by it, and a "wrong" certificate from a second CA that no verifier trusts.

RSA 2048 keys take a while to make, so the set is made once per test process.
"""
from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from xds.dmp.credentials import DMPCredentials, Software, make_credentials
from xds.metadata.model import Code

NOW = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.timezone.utc)
STRUCTURE_ID = "1750803447"
SECTOR = Code("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé")
SOFTWARE = Software("Aiguillage", "0.1.0", "HOMOLOG-TEST-1")


@dataclass(frozen=True)
class Party:
    """A key and its certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, STRUCTURE_ID),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, key, issuer: Party | None, ca: bool,
                 not_after: datetime.datetime) -> x509.Certificate:
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.certificate.subject if issuer else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=30)).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            signer_key.public_key()), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def _party(common_name: str, organisation: str, issuer: Party | None, ca: bool,
           not_after: datetime.datetime | None = None) -> Party:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Party(key, _certificate(_name(common_name, organisation), key, issuer, ca,
                                   not_after or NOW + datetime.timedelta(days=3650)))


@dataclass(frozen=True)
class PKI:
    ca: Party
    structure: Party
    wrong_ca: Party
    wrong: Party

    def credentials(self, party: Party | None = None) -> DMPCredentials:
        party = party or self.structure
        return make_credentials(party.key, [party.certificate], structure_id=STRUCTURE_ID,
                                activity_sector=SECTOR, software=SOFTWARE, now=NOW)

    def write(self, folder: Path) -> dict[str, Path]:
        """The CA, the structure's certificate and key as PEM files in *folder*."""
        paths = {"ca": folder / "ca.pem", "certificate": folder / "structure.pem",
                 "key": folder / "structure.key"}
        paths["ca"].write_bytes(self.ca.certificate_pem())
        paths["certificate"].write_bytes(self.structure.certificate_pem())
        paths["key"].write_bytes(self.structure.key_pem())
        return paths


@functools.lru_cache(maxsize=1)
def pki() -> PKI:
    """The test PKI (made once per process)."""
    ca = _party("Autorité de test DMP", "ANS test", None, True)
    wrong_ca = _party("Autre autorité", "Ailleurs", None, True)
    structure = _party("Cachet Hôpital de test", "Hôpital de test", ca, False)
    wrong = _party("Cachet Hôpital de test", "Hôpital de test", wrong_ca, False)
    return PKI(ca, structure, wrong_ca, wrong)
