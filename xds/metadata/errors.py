"""
Registry errors as RegistryResponse carries them (ITI TF-3 §4.2.4), and the
standard error codes, each spelled once.

test-case-name: tests.xds.test_validation
"""
from __future__ import annotations

from dataclasses import dataclass

from xds.metadata.vocabulary import SEVERITY_ERROR, SEVERITY_WARNING

REGISTRY_ERROR = "XDSRegistryError"
REPOSITORY_ERROR = "XDSRepositoryError"
REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
MISSING_DOCUMENT = "XDSMissingDocument"
MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
REGISTRY_DEPRECATED_DOCUMENT_ERROR = "XDSRegistryDeprecatedDocumentError"
EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
INVALID_DOCUMENT_CONTENT = "InvalidDocumentContent"
REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"


@dataclass(frozen=True)
class RegistryError:
    """One ``rs:RegistryError``: a code, a human-readable context, where, how bad."""

    error_code: str
    code_context: str
    location: str | None = None
    severity: str = SEVERITY_ERROR

    @property
    def is_error(self) -> bool:
        """True for an error, False for a warning (which does not fail a request)."""
        return self.severity != SEVERITY_WARNING


def warning(error_code: str, code_context: str, location: str | None = None) -> RegistryError:
    """A RegistryError with Warning severity."""
    return RegistryError(error_code, code_context, location, SEVERITY_WARNING)


class MetadataError(ValueError):
    """Metadata that cannot even be read into the model; carries its RegistryErrors."""

    def __init__(self, errors: list[RegistryError]):
        super().__init__("; ".join(f"{e.error_code}: {e.code_context}" for e in errors))
        self.errors = errors
