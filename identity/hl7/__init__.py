"""
The HL7 side of the patient index, as pure code: what messages ask, what to answer.

``pid`` reads a PID (PAM France) into the identity model; ``adt`` turns an ADT event into
index commands and ``feed`` runs them on an :class:`identity.service.IdentityService`;
``pix`` and ``pdq`` read the ITI-9 and ITI-21 queries and write their answers (``response``
frames them, ``pidwriter`` writes the persons); ``rewrite`` is the ``identity:`` step's PID-3
rewrite; ``audit`` the record of every query and disclosure; ``queries`` answers one PIX
or PDQ query on the service with its audit record. Only this subpackage of
``identity`` reads messages (``mappings``, ``mllp``); none of it does I/O.
"""
