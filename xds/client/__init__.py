"""XDS.b Document Source / Consumer over Twisted's HTTP client, behind ``send(request)``.

test-case-name: tests.xds.test_http_client
"""
