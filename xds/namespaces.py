"""
The one definition of each XML namespace XDS.b speaks, and Clark-notation
helpers (``{ns}local``) so that modules never spell a namespace twice.

test-case-name: tests.xds.test_metadata_xml
"""
from __future__ import annotations

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
XDS = "urn:ihe:iti:xds-b:2007"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
CDA = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: Prefixes used when Aiguillage writes XML (readers never rely on prefixes).
PREFIXES = {
    "soap": SOAP12, "wsa": WSA, "xop": XOP, "xds": XDS, "lcm": LCM,
    "query": QUERY, "rim": RIM, "rs": RS,
}


def qname(namespace: str, local: str) -> str:
    """The Clark name ``{namespace}local`` that lxml uses for tags and attributes."""
    return f"{{{namespace}}}{local}"


def rim(local: str) -> str:
    """Clark name in the ebRIM namespace."""
    return qname(RIM, local)
