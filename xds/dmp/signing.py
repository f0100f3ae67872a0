"""
The one XML-DSig setting the DMP uses for every signature it asks of us:
RSA-SHA256, SHA-256 digests, exclusive canonicalisation (so that a signed
element keeps its signature when moved into another document, as the VIHF
is moved into the SOAP header), the signer's certificate chain in KeyInfo.

test-case-name: tests.xds.dmp.test_vihf
"""
from __future__ import annotations

from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

DS = "http://www.w3.org/2000/09/xmldsig#"
SIGNATURE_METHOD = SignatureMethod.RSA_SHA256
DIGEST_METHOD = DigestAlgorithm.SHA256
C14N_METHOD = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0

SIGNER_SETTINGS = {"signature_algorithm": SIGNATURE_METHOD, "digest_algorithm": DIGEST_METHOD,
                   "c14n_algorithm": C14N_METHOD}
