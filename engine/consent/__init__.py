"""
Patients' consent: who opposed sharing, looked up across the identifiers the identity index
knows of one person, and the identifiers as operators write them.

test-case-name: tests.consent.test_lookup
"""
