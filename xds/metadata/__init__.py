"""
The XDS.b metadata: the ebRIM 3.0 model of a submission, its XML reading and
writing, and its validation with the standard registry error codes.

test-case-name: tests.xds.test_metadata_xml
"""
