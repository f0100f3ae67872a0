"""
The engine's listeners besides MLLP: the admin site (health, status, metrics, operator
actions) with the checks every admin request passes, and the served shared record (the
built-in XDS.b registry/repository). The composition root (:mod:`engine.app`) starts them;
nothing in the flow, the store or delivery knows them.
"""
