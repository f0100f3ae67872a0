"""
What makes two inbound messages the same message: their sender and control id, decoded.

Why decoded: a sender may write the same value with different escapes (``A\\T\\B``, or a
component separator escaped in one copy and not in another), and the duplicate check must
compare values, not spellings. HD values (MSH-3, MSH-4) compare component by component,
trailing empty components dropped (``HIS`` and ``HIS^^`` are one application).

test-case-name: tests.flow.test_dedupe
"""
from __future__ import annotations

from functools import lru_cache

from mappings.escaping import Delimiters, unescape
from mllp.header import MSHHeader


@lru_cache(maxsize=64)
def _delimiters(field_separator: str, encoding_characters: str) -> Delimiters:
    return Delimiters.from_msh(field_separator, encoding_characters)


def identity(header: MSHHeader) -> tuple[tuple[str, ...], ...]:
    """(MSH-3 components, MSH-4 components, (MSH-10,)), escapes resolved.

    The sender's part is the same for every message of a header's shape
    (:class:`mllp.header.HeaderShape`): resolved once, kept there."""
    shape = header.shape
    sender = shape.derived.get(identity) if shape is not None else None
    if sender is None:
        sender = _sender(header)
        if shape is not None:
            shape.derived[identity] = sender
    application, facility, delimiters = sender
    return application, facility, (unescape(header.control_id, delimiters),)


def _sender(header: MSHHeader) -> tuple[tuple[str, ...], tuple[str, ...], Delimiters]:
    """MSH-3's and MSH-4's components, escapes resolved, and the delimiters of ``header``."""
    delimiters = _delimiters(header.field_separator, header.encoding_characters)
    return (_hd(header.sending_application, delimiters),
            _hd(header.sending_facility, delimiters), delimiters)


def _hd(value: str, delimiters: Delimiters) -> tuple[str, ...]:
    if delimiters.component not in value and delimiters.escape not in value:
        return (value,) if value else ()  # one component, nothing to resolve: most senders
    components = [unescape(part, delimiters) for part in value.split(delimiters.component)]
    while components and not components[-1]:
        components.pop()
    return tuple(components)
