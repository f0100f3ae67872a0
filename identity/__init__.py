"""
The master patient index: which person a message is about.

``identity.model`` holds the plain data (identifier domains, local identifiers,
identity traits, the INS and its status); ``identity.matching`` decides, from
those data alone, whether an incoming identity is a known person, a case for a
human to review, or a new person. Nothing here does I/O: the store-backed index
and the ADT/PIX/PDQ wiring implement :class:`identity.matching.index.CandidateIndex`
and call :func:`identity.matching.resolver.resolve`.

This package imports nothing of ``engine/`` or ``channels/``.
"""
