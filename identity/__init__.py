"""
The master patient index: which person a message is about.

``identity.model`` holds the plain data (identifier domains, local identifiers,
identity traits, the INS and its status); ``identity.matching`` decides, from
those data alone, whether an incoming identity is a known person, a case for a
human to review, or a new person. ``identity.service`` is the Protocol of the
index service the HL7 side calls, and ``identity.hl7`` reads ADT events and PIX/PDQ
queries into its commands and writes the answers. Nothing here does I/O: the
store-backed index implements :class:`identity.matching.index.CandidateIndex` and
:class:`identity.service.IdentityService`.

This package imports nothing of ``engine/`` or ``channels/``.
"""
