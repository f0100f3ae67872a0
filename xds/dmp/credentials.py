"""
The structure's credentials for the DMP, read once from configured files:
the "cachet" (organisation seal) certificate and its private key, which sign
both the VIHF assertion and the submission-set signature, and the ids that
go with them (the structure's national id, its activity sector, the
software's name, version and DMP homologation number).

Loading checks what would otherwise fail later on the wire: the key matches
the certificate, the certificate is valid now, and the key is RSA (the DMP
signs RSA-SHA256).

test-case-name: tests.xds.dmp.test_credentials
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from xds.metadata.model import Code


class CredentialsError(ValueError):
    """The configured certificate or key cannot be used to sign for the DMP."""


@dataclass(frozen=True)
class Software:
    """The sending software as the VIHF names it (LPS_Nom, LPS_Version, LPS_ID_HOMOLOGATION_DMP)."""

    name: str
    version: str
    homologation: str = ""


@dataclass(frozen=True)
class DMPCredentials:
    """Who signs: the structure's key and certificate chain (signer first) and its ids.

    *structure_id* is the VIHF ``Identifiant_Structure`` (idNat_Struct, e.g.
    ``1`` + FINESS); *activity_sector* the ``Secteur_Activite`` code
    (JDV_J61, e.g. ``SA01`` in ``1.2.250.1.71.4.2.4``).
    """

    key: rsa.RSAPrivateKey
    certificates: tuple[x509.Certificate, ...]
    structure_id: str
    activity_sector: Code
    software: Software

    @property
    def certificate(self) -> x509.Certificate:
        """The signing certificate (the first of the chain)."""
        return self.certificates[0]

    @property
    def subject_dn(self) -> str:
        """The signing certificate's subject DN (RFC 4514), the VIHF ``Issuer``."""
        return self.certificate.subject.rfc4514_string()


def load_credentials(certificate_file: str | Path, key_file: str | Path, *, structure_id: str,
                     activity_sector: Code, software: Software, key_password: bytes | None = None,
                     chain_file: str | Path | None = None,
                     now: datetime.datetime | None = None) -> DMPCredentials:
    """Read PEM files into :class:`DMPCredentials`, or raise :class:`CredentialsError`.

    *chain_file* may hold intermediate certificates to send after the signer's.
    Blocking file I/O: call it at configuration time, not on the reactor.
    """
    certificates = _read_certificates(Path(certificate_file))
    if chain_file is not None:
        certificates += _read_certificates(Path(chain_file))
    try:
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), key_password)
    except (OSError, ValueError, TypeError) as exc:
        raise CredentialsError(f"private key {key_file}: {exc}") from None
    return make_credentials(key, certificates, structure_id=structure_id,
                            activity_sector=activity_sector, software=software, now=now)


def make_credentials(key, certificates: list[x509.Certificate], *, structure_id: str,
                     activity_sector: Code, software: Software,
                     now: datetime.datetime | None = None) -> DMPCredentials:
    """Check and bundle an already loaded key and chain (see :func:`load_credentials`)."""
    if not certificates:
        raise CredentialsError("no certificate given for the DMP signing key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialsError(f"the DMP signing key must be RSA, not {type(key).__name__}")
    signer = certificates[0]
    if signer.public_key().public_numbers() != key.public_key().public_numbers():
        raise CredentialsError(f"the private key does not match the certificate"
                               f" {signer.subject.rfc4514_string()}")
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    if not signer.not_valid_before_utc <= moment <= signer.not_valid_after_utc:
        raise CredentialsError(
            f"certificate {signer.subject.rfc4514_string()} is valid from"
            f" {signer.not_valid_before_utc:%Y-%m-%d} to {signer.not_valid_after_utc:%Y-%m-%d},"
            f" not on {moment:%Y-%m-%d}")
    if not structure_id:
        raise CredentialsError("structure_id (Identifiant_Structure) is empty")
    return DMPCredentials(key, tuple(certificates), structure_id, activity_sector, software)


def _read_certificates(path: Path) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"certificate file {path}: {exc}") from None
    return certificates
