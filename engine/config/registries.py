"""
The ``registries:`` section of engine.yaml: the XDS.b registries and repositories that
``aiguillage xds`` commands talk to, by name.

Each names its endpoints (ITI-18 stored queries, ITI-41 submissions, ITI-43 retrievals: a
shared record often serves them at different URLs), the repository's uniqueId (what an ITI-43
request names), the Document Source's OID for submissions, the codes a CDA header does not
carry (classCode...), and for HTTPS the CA to trust and the client certificate and key of
mutual TLS. Every mistake is reported with its file, line and field.

.. code-block:: yaml

    registries:
      dmp-test:
        query_url: https://registry.example/xdsregistry/iti18
        submit_url: https://repository.example/xdsrepository/iti41
        retrieve_url: https://repository.example/xdsrepository/iti43
        repository_unique_id: 1.2.250.1.999.7.1
        source_id: 1.2.250.1.999.8
        class_code: "10^^1.2.250.1.213.1.1.4.1"
        tls: {ca: ca.pem, cert: client.pem, key: client.key}

test-case-name: tests.config.test_registries
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from engine.config.schema import Problems, Section, Where, describe, key_position, validate_section
from engine.config.yamlsource import YAMLMapping
from engine.interfaces import OptionSpec


@dataclass(frozen=True)
class RegistryConfig:
    """One registry/repository pair as the ``xds`` commands reach it."""

    name: str
    query_url: str | None = None  # ITI-18 Registry Stored Query
    submit_url: str | None = None  # ITI-41 Provide and Register Document Set-b
    retrieve_url: str | None = None  # ITI-43 Retrieve Document Set
    repository_unique_id: str | None = None
    source_id: str | None = None  # the Document Source's OID (SubmissionSet.sourceId)
    class_code: str | None = None  # "code^^scheme", for a CDA whose header has no class
    content_type_code: str | None = None
    healthcare_facility_type_code: str | None = None
    practice_setting_code: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timeout: float = 60.0
    max_response_bytes: int = 256 * 1024 * 1024


def _url(value: Any) -> str | None:
    if not str(value).startswith(("http://", "https://")):
        return "expected an http:// or https:// URL"
    return None


def _oid(value: Any) -> str | None:
    parts = str(value).split(".")
    return None if all(part.isdigit() for part in parts) else "expected an OID (digits and dots)"


def _code(value: Any) -> str | None:
    code, _, scheme = str(value).partition("^^")
    return None if code and scheme else 'expected "code^^scheme" (e.g. "10^^1.2.250.1.213.1.1.4.1")'


_CODES = ("class_code", "content_type_code", "healthcare_facility_type_code",
          "practice_setting_code")
TLS_SECTION = Section(
    (OptionSpec("ca", "path", help="PEM file of the CAs to trust (default: the system's)"),
     OptionSpec("cert", "path", help="PEM client certificate (mutual TLS)"),
     OptionSpec("key", "path", help="PEM private key of the client certificate")))
REGISTRY_SECTION = Section(
    (OptionSpec("query_url", "str", help="ITI-18 Registry Stored Query endpoint"),
     OptionSpec("submit_url", "str", help="ITI-41 Provide and Register endpoint"),
     OptionSpec("retrieve_url", "str", help="ITI-43 Retrieve Document Set endpoint"),
     OptionSpec("repository_unique_id", "str", help="the repository's uniqueId (ITI-43)"),
     OptionSpec("source_id", "str", help="this Document Source's OID (ITI-41)"),
     *(OptionSpec(name, "str", help='"code^^scheme" used when a document does not say')
       for name in _CODES),
     OptionSpec("tls", "mapping", help="ca, cert and key PEM files"),
     OptionSpec("timeout", "duration", default=60),
     OptionSpec("max_response_bytes", "size", default="256MiB")),
    nested={"tls": TLS_SECTION},
    checks={"query_url": _url, "submit_url": _url, "retrieve_url": _url,
            "repository_unique_id": _oid, "source_id": _oid,
            **{name: _code for name in _CODES}})


def registries_config(root: YAMLMapping, where: Where,
                      problems: Problems) -> dict[str, RegistryConfig]:
    """Every registry of ``registries:``, by name; {} when the section is absent."""
    raw = root.get("registries")
    if raw is None:
        return {}
    here = where.child("registries", root.key_position("registries"))
    if not isinstance(raw, Mapping):
        problems.add(here, f"expected a mapping of registry names, got {describe(raw)}")
        return {}
    found = {}
    for name, options in raw.items():
        at = here.child(name, key_position(raw, name))
        values = validate_section(options, REGISTRY_SECTION, at, problems)
        if values is None:
            continue
        tls = values.pop("tls") or {}
        if bool(tls.get("cert")) != bool(tls.get("key")):
            problems.add(at.child("tls"), "cert and key go together (mutual TLS)")
        if not any(values[url] for url in ("query_url", "submit_url", "retrieve_url")):
            problems.add(at, "a registry needs at least one of query_url, submit_url, "
                             "retrieve_url")
        found[str(name)] = RegistryConfig(str(name), tls_ca=tls.get("ca"),
                                          tls_cert=tls.get("cert"), tls_key=tls.get("key"),
                                          **values)
    return found


__all__ = ["REGISTRY_SECTION", "RegistryConfig", "registries_config"]
