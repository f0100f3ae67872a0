"""
A ``python:`` step that does nothing, for bench/mapping_cost.py.

Appended to a mapping, it keeps the mapping's outcome but makes the channel's cost unknown to
the engine, so the channel's pipeline runs in the processor after the message's commit (and
needs a second commit) instead of at intake: the way every mapped channel ran before
engine/flow/intakepipeline.py. The bench measures both ways in the same conditions.
"""


def keep(message) -> None:
    """Leave ``message`` as it is."""
