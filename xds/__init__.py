"""
IHE XDS.b, XDM and CDA for Aiguillage: the pure core.

* :mod:`xds.safexml` parses untrusted XML (no DTD, no entities, no network,
  bounded size); every XML entry point of this package goes through it.
* :mod:`xds.namespaces` holds the one definition of each XML namespace.
* :mod:`xds.metadata` is the ebRIM 3.0 model of a submission (SubmissionSet,
  DocumentEntry, Folder, Association), its reading from and writing to XML,
  and its validation against the XDS.b metadata rules.
* :mod:`xds.soap` holds SOAP 1.2 with WS-Addressing, faults, RegistryResponse,
  MTOM/XOP framing and the document parts of ITI-41 requests.
* :mod:`xds.cda` reads a CDA R2 header and derives DocumentEntry metadata.

The package knows nothing of channels/ or the engine's pipeline; transports
(client, server) come on top of these pure parts. See docs/xds.md for the
choices (hand-written model rather than pyxb-x bindings, python-multipart).

test-case-name: tests.xds.test_layering
"""
