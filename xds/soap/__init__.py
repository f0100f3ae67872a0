"""
SOAP 1.2 with WS-Addressing, faults, RegistryResponse, MTOM/XOP framing and
the document parts of ITI-41: pure builders and parsers with limits.

test-case-name: tests.xds.test_soap
"""
