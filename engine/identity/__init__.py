"""
The glue between the engine's flow and the patient index (``identity/``): the one package
that knows both. See :mod:`engine.identity.hook`.
"""
