"""
The ``shared_record:`` section of engine.yaml: the built-in XDS.b registry and
repository the engine serves (ITI-41, ITI-42, ITI-18, ITI-43), where it
listens, how large a request may be, and its TLS.

Example::

    shared_record:
      listen: 127.0.0.1:8090          # host:port; port 0 picks a free one
      path: /xds                      # endpoints: /xds/repository and /xds/registry
      repository_unique_id: 1.2.250.1.999.7.1
      max_document_bytes: 64MiB       # one document, MTOM part or inline
      max_request_bytes: 256MiB       # one HTTP body, refused as it arrives past this
      tls:                            # optional; mutual TLS with ca + require_client_certificate
        certificate: tls/server.pem
        key: tls/server.key
        ca: tls/clients-ca.pem
        require_client_certificate: true

Whatever can be checked without reading certificates is checked here, at its
file and line; that the PEM files hold a usable certificate and key is
checked when the engine builds the listener's TLS options
(:func:`engine.app.check_connectors`, before anything listens).

test-case-name: tests.config.test_shared_record_section
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from engine.config.schema import (
    Invalid, Problems, Section, Where, at_least, describe, key_position)
from engine.config.yamlsource import YAMLMapping
from engine.interfaces import OptionSpec

SECTION_NAME = "shared_record"
#: The pseudo-channel the served shared record's refused requests are stored under (as
#: messages in ERROR): no channel may take this name.
REFUSALS_CHANNEL = "shared_record"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class SharedRecordTLS:
    """PEM files of the listener's TLS; with *ca*, client certificates are verified."""

    certificate: str
    key: str
    ca: str | None = None
    require_client_certificate: bool = False


@dataclass(frozen=True)
class SharedRecordConfig:
    """The built-in registry/repository's listener and limits.

    *file* and *line* say where the section is written, for problems found later (TLS
    files that do not load)."""

    host: str
    port: int
    path: str
    repository_unique_id: str
    max_document_bytes: int
    max_request_bytes: int
    max_results: int
    tls: SharedRecordTLS | None = None
    # where the section is written: not compared, so that a comment added above it is no
    # change to the served record (engine.reload)
    file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)

    def endpoint(self, name: str) -> str:
        """The URL path of one endpoint (``repository`` or ``registry``)."""
        return f"{self.path}/{name}"


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` as (host, port), or raise :class:`Invalid`."""
    host, separator, port = str(value).rpartition(":")
    if not separator or not _HOST.fullmatch(host) or not port.isdigit() \
            or not 0 <= int(port) <= 65535:
        raise Invalid(f'expected host:port like "127.0.0.1:8090" (IPv4 address or name, '
                      f"port 0 to 65535), got {describe(value)}")
    return host, int(port)


def _listen_check(value: str) -> str | None:
    try:
        parse_listen(value)
    except Invalid as error:
        return str(error)
    return None


def _path_check(value: str) -> str | None:
    if _PATH.fullmatch(value.rstrip("/")) is None:
        return (f'expected a URL path like "/xds" (segments of letters, digits, ".", "-",'
                f' "_", "~"), got {describe(value)}')
    return None


def _oid_check(value: str) -> str | None:
    if _OID.fullmatch(value) is None or len(value) > 64:
        return f'expected an OID like "1.2.250.1.999.7.1" (at most 64 characters), got {describe(value)}'
    return None


TLS_SECTION = Section(
    (OptionSpec("certificate", "path", required=True,
                help="PEM: the server certificate, then its chain"),
     OptionSpec("key", "path", required=True, help="PEM: the certificate's private key"),
     OptionSpec("ca", "path", help="PEM: the CAs client certificates are checked against"),
     OptionSpec("require_client_certificate", "bool", default=False,
                help="mutual TLS: refuse a client without a certificate the ca signed")))

SHARED_RECORD_SECTION = Section(
    (OptionSpec("enabled", "bool", default=True, help="false: configured but not served"),
     OptionSpec("listen", "str", default="127.0.0.1:8090",
                help="host:port of the XDS.b listener; port 0 picks a free one"),
     OptionSpec("path", "str", default="/xds",
                help="URL prefix of the endpoints <path>/repository and <path>/registry"),
     OptionSpec("repository_unique_id", "str", required=True,
                help="this repository's OID (ITI-41 stores under it, ITI-43 asks for it)"),
     OptionSpec("max_document_bytes", "size", default="64MiB",
                help="largest document (an MTOM part, or inline once decoded)"),
     OptionSpec("max_request_bytes", "size", default="256MiB",
                help="largest HTTP request body; refused as it arrives past this"),
     OptionSpec("max_results", "int", default=10_000,
                help="most objects one stored query may return (XDSTooManyResults)"),
     OptionSpec("tls", "mapping", help="certificate, key, ca, require_client_certificate")),
    nested={"tls": TLS_SECTION},
    checks={"listen": _listen_check, "path": _path_check,
            "repository_unique_id": _oid_check, "max_document_bytes": at_least(1),
            "max_request_bytes": at_least(1024), "max_results": at_least(1)})


def shared_record_config(root: YAMLMapping, values: dict | None, where: Where,
                         problems: Problems) -> SharedRecordConfig | None:
    """The served shared record; None when the section is absent, disabled or invalid
    (its problems added)."""
    if not values or not values["enabled"]:
        return None
    raw = root.get(SECTION_NAME)
    here = where.child(SECTION_NAME, root.key_position(SECTION_NAME))
    count = len(problems)
    tls = _tls(raw, values["tls"], here, problems)
    if (values["max_document_bytes"] or 0) > (values["max_request_bytes"] or 0) > 0:
        problems.add(here.child("max_document_bytes", key_position(raw, "max_document_bytes")),
                     f"max_document_bytes ({values['max_document_bytes']}) is over "
                     f"max_request_bytes ({values['max_request_bytes']}): no request could "
                     "carry such a document")
    if len(problems) > count or any(values[name] is None for name in (
            "listen", "path", "repository_unique_id", "max_document_bytes",
            "max_request_bytes", "max_results")):
        return None
    host, port = parse_listen(values["listen"])
    return SharedRecordConfig(
        host=host, port=port, path=values["path"].rstrip("/"),
        repository_unique_id=values["repository_unique_id"],
        max_document_bytes=values["max_document_bytes"],
        max_request_bytes=values["max_request_bytes"], max_results=values["max_results"],
        tls=tls, file=here.file, line=here.line or 0)


def _tls(raw: Mapping | None, values: dict | None, where: Where,
         problems: Problems) -> SharedRecordTLS | None:
    if not values:
        return None
    raw_tls = raw.get("tls") if isinstance(raw, Mapping) else None
    here = where.child("tls", key_position(raw, "tls"))
    for name in ("certificate", "key", "ca"):
        path = values[name]
        if path is not None and not os.path.isfile(path):
            problems.add(here.child(name, key_position(raw_tls, name)),
                         f"{name} file {path} does not exist or is not a file")
    if values["require_client_certificate"] and values["ca"] is None:
        problems.add(here.child("require_client_certificate",
                                key_position(raw_tls, "require_client_certificate")),
                     "require_client_certificate needs ca: the CAs that sign the clients' "
                     "certificates")
    if values["certificate"] is None or values["key"] is None:
        return None
    return SharedRecordTLS(values["certificate"], values["key"], values["ca"],
                           values["require_client_certificate"])


def shared_record_listeners(root: YAMLMapping, where: Where,
                            values: dict | None) -> list[tuple]:
    """(host, port, where, label) of the shared record's listener, for the loader's check
    that no two listeners share a port (whatever else is wrong in the section); none when
    it is not served, its ``listen`` is invalid, or it picks a free port."""
    if not values or not values["enabled"] or values["listen"] is None:
        return []
    host, port = parse_listen(values["listen"])
    if port == 0:
        return []
    raw = root.get(SECTION_NAME)
    here = where.child(SECTION_NAME, root.key_position(SECTION_NAME)).child(
        "listen", key_position(raw, "listen"))
    return [(host, port, here, "the shared record's XDS.b listener")]
