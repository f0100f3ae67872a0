"""Built-in transforms: whole-message conversions a channel applies by name (no I/O).

test-case-name: tests.mappings.test_transform_registry
"""
