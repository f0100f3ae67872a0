"""The official XSDs of the shared standards folder, compiled offline, and the check of an
element against one of them.

The folder is found by :func:`tests.standards.standards_dir` (skipped outside CI, a failure
under CI when absent).
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
from lxml import etree

from tests.standards import standards_dir

XML_XSD_URL = "http://www.w3.org/2001/xml.xsd"


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
