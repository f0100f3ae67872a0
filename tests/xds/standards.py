"""Where the shared standards folder is, and its official XSDs compiled offline.

The folder comes from AIGUILLAGE_STANDARDS, or ``../shared/standards`` beside
the repository. Outside CI a missing folder skips the conformance tests with a
message saying how to get them; under CI (CI=true) it fails them, so that a
CI run never passes without checking against the official schemas.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[2]
XML_XSD_URL = "http://www.w3.org/2001/xml.xsd"


def standards_dir() -> Path:
    """The standards folder, or skip (outside CI) / fail (under CI) when absent."""
    configured = os.environ.get("AIGUILLAGE_STANDARDS")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "standards"
    if (path / "SOURCES.md").is_file():
        return path
    message = (f"standards folder not found at {path} (set AIGUILLAGE_STANDARDS to the "
               "shared/standards folder holding SOURCES.md)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def sample(relative: str) -> Path:
    """A file under the standards folder."""
    return standards_dir() / relative


class _OfflineXMLSchemaResolver(etree.Resolver):
    """Maps the W3C xml.xsd URL that rim.xsd imports to the local copy."""

    def __init__(self, local: Path):
        super().__init__()
        self.local = local

    def resolve(self, url, pubid, context):
        if url == XML_XSD_URL:
            return self.resolve_filename(str(self.local), context)
        return None


@functools.lru_cache(maxsize=None)
def _schema(relative: str) -> etree.XMLSchema:
    root = standards_dir()
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_OfflineXMLSchemaResolver(root / "xds" / "schema" / "xml.xsd"))
    return etree.XMLSchema(etree.parse(str(root / relative), parser))


SCHEMAS = {
    "xdsb": "xds/schema/IHE/XDS.b_DocumentRepository.xsd",
    "lcm": "xds/schema/ebRS/lcm.xsd",
    "rs": "xds/schema/ebRS/rs.xsd",
    "query": "xds/schema/ebRS/query.xsd",
    "soap": "soap/schema/soap-1.2-envelope.xsd",
    "cda": "cda/schema/ans/CDA_extended.xsd",
}


def schema(name: str) -> etree.XMLSchema:
    """One of :data:`SCHEMAS`, compiled once per test process."""
    return _schema(SCHEMAS[name])


def assert_valid(name: str, element: etree._Element) -> None:
    """Fail with the schema's own messages if *element* is not valid against *name*."""
    checker = schema(name)
    if not checker.validate(etree.ElementTree(element)):
        errors = "\n".join(f"line {e.line}: {e.message}" for e in checker.error_log)
        pytest.fail(f"not valid against {SCHEMAS[name]}:\n{errors}")
