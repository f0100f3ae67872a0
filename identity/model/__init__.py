"""
The data of the master patient index, without behaviour beyond validation.

test-case-name: tests.identity.test_model
"""
from identity.model.domains import (
    INS_C,
    INS_DOMAINS,
    INS_NIA,
    INS_NIR,
    INS_NIR_DEMO,
    INS_NIR_TEST,
    IdentifierDomain,
)
from identity.model.nir import InvalidNIR, check_nir, nir_key
from identity.model.person import (
    INS,
    IdentityStatus,
    InvalidTraits,
    LocalIdentifier,
    Sex,
    Traits,
)

__all__ = [
    "INS", "INS_C", "INS_DOMAINS", "INS_NIA", "INS_NIR", "INS_NIR_DEMO", "INS_NIR_TEST",
    "IdentifierDomain", "IdentityStatus", "InvalidNIR", "InvalidTraits", "LocalIdentifier",
    "Sex", "Traits", "check_nir", "nir_key",
]
