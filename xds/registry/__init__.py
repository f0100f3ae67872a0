"""
The built-in XDS.b registry and repository, in the engine's store: register
(ITI-42), provide and register (ITI-41), stored queries (ITI-18) and
retrieve (ITI-43) as synchronous functions of a SQLAlchemy connection, to be
run in threads of its own by a server (xds/registry/threads.py).

test-case-name: tests.xds.test_registry_register
"""
