"""
The identifier domains a territory's index knows, as HL7 names them in CX.4.

A PID-3 repetition, a QPD-3 person identifier or a QPD-4 domain names its
assigning authority as ``namespace&OID&ISO``. The index accepts only domains it
was configured with (plus the INS domains, always known): an identifier in a
domain nobody declared is refused (ERR 204) rather than filed under a number
that means nothing. Some senders give only the namespace (``^^^HZLN``); it is
accepted when one known domain carries that namespace.

test-case-name: tests.identity.hl7.test_pid
"""
from __future__ import annotations

from collections.abc import Iterable

from identity.model import INS_C, INS_DOMAINS, IdentifierDomain

ISO = "ISO"


class DomainTable:
    """The known domains, looked up by OID (CX.4.2) or, failing that, namespace (CX.4.1)."""

    def __init__(self, domains: Iterable[IdentifierDomain], *, with_ins: bool = True) -> None:
        known = list(domains) + (sorted(INS_DOMAINS, key=lambda d: d.oid) if with_ins else [])
        self._by_oid = {domain.oid: domain for domain in known}
        self._by_namespace: dict[str, IdentifierDomain | None] = {}
        for domain in known:
            if domain.namespace:  # a namespace two domains share names neither
                taken = domain.namespace in self._by_namespace
                self._by_namespace[domain.namespace] = None if taken else domain

    def __contains__(self, domain: IdentifierDomain) -> bool:
        return domain.oid in self._by_oid

    def __iter__(self):
        return iter(self._by_oid.values())

    def find(self, namespace: str, oid: str) -> IdentifierDomain | None:
        """The known domain an HD (``namespace``, ``oid``) names, or None.

        The OID decides when given; the obsolete INS-C is never a known domain.
        """
        if oid:
            domain = self._by_oid.get(oid)
            return None if domain is None or domain == INS_C else domain
        return self._by_namespace.get(namespace) if namespace else None


def authority(domain: IdentifierDomain, subcomponent: str = "&") -> str:
    """CX.4 for ``domain``: ``namespace&OID&ISO`` (with the message's subcomponent separator)."""
    return subcomponent.join((domain.namespace, domain.oid, ISO))
