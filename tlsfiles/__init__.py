"""TLS options and listening endpoints from PEM files, shared by the MLLP and XDS.b
transports (neither may import the other): :mod:`tlsfiles.pem`."""
