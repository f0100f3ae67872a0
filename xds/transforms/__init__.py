"""Built-in transforms whose output is XDS: submissions built from documents and values.

test-case-name: tests.xds.test_mdm_submission
"""
