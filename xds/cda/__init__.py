"""
CDA R2: reading a document's header and deriving its XDS DocumentEntry.

test-case-name: tests.xds.test_cda
"""
