"""XDS.b endpoints served with twisted.web: resources that dispatch on wsa:Action to a handler.

test-case-name: tests.xds.test_http_server
"""
