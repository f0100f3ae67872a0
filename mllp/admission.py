"""
Who may hold a connection to an MLLP listener: caps, allow-lists, and counted refusals.

Every connection costs a file descriptor, and the process has a fixed number of them: a peer
that opens connections without end (a retry loop gone wrong, a scan, an attack) would
otherwise take them all, and then every listener of the engine, on every port, loses the
connections of well-behaved senders too. :class:`Admission` is the policy, pure so it is
tested without sockets: a cap on a listener's connections, a cap per peer address, an
allow-list of networks, and one of TLS client certificate subjects (checked once the
handshake has shown the certificate). The server factory asks it at accept and closes a
refused connection at once, before reading a byte.

Refusals are counted per reason. Logging each would let the same peer fill the log, so
:class:`RefusalLog` says when to write one WARNING line: the first refusal, then at most
one per interval, carrying the counts since the last line.

test-case-name: tests.mllp.test_admission
"""
from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Iterable

MAX_CONNECTIONS = "max_connections"
MAX_PER_PEER = "max_connections_per_peer"
ADDRESS_NOT_ALLOWED = "address_not_allowed"
CERTIFICATE_NOT_ALLOWED = "certificate_not_allowed"
REASONS = (MAX_CONNECTIONS, MAX_PER_PEER, ADDRESS_NOT_ALLOWED, CERTIFICATE_NOT_ALLOWED)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks (``10.0.0.0/8``, ``::1``); ValueError naming a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network such as "
                             '"10.1.0.0/16"') from None
    return tuple(networks)


class Admission:
    """The connection policy of one listener, and what it currently admits.

    ``max_connections`` and ``max_per_peer`` None mean no cap; empty ``networks`` or
    ``subjects`` mean no allow-list. :meth:`admit` and :meth:`release` must pair up.
    """

    def __init__(self, *, max_connections: int | None = None, max_per_peer: int | None = None,
                 networks: Iterable[Network] = (), subjects: Iterable[str] = ()):
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.networks = tuple(networks)
        self.subjects = frozenset(subjects)
        self.open = 0
        self.per_peer: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def admit(self, host: str) -> str | None:
        """Take a connection from ``host``; None if admitted, else the reason it is refused
        (one of :data:`REASONS`, also counted in :attr:`refused`)."""
        reason = self._reason(host)
        if reason is not None:
            self.refused[reason] += 1
            return reason
        self.open += 1
        self.per_peer[host] += 1
        return None

    def _reason(self, host: str) -> str | None:
        if self.networks and not self._allowed(host):
            return ADDRESS_NOT_ALLOWED
        if self.max_connections is not None and self.open >= self.max_connections:
            return MAX_CONNECTIONS
        if self.max_per_peer is not None and self.per_peer[host] >= self.max_per_peer:
            return MAX_PER_PEER
        return None

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def release(self, host: str) -> None:
        """An admitted connection from ``host`` is gone."""
        self.open -= 1
        self.per_peer[host] -= 1
        if self.per_peer[host] <= 0:
            del self.per_peer[host]

    def admit_certificate(self, subject: str | None) -> str | None:
        """None if a TLS peer showing ``subject`` (None: no certificate) may go on, else
        :data:`CERTIFICATE_NOT_ALLOWED`, counted."""
        if not self.subjects or subject in self.subjects:
            return None
        self.refused[CERTIFICATE_NOT_ALLOWED] += 1
        return CERTIFICATE_NOT_ALLOWED


class RefusalLog:
    """When to log refusals: the first at once, then one line per ``interval`` seconds."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last: float | None = None
        self._since: Counter[str] = Counter()

    def note(self, reason: str, now: float) -> Counter[str] | None:
        """Count a refusal; the counts to log now (and reset), or None to stay quiet."""
        self._since[reason] += 1
        if self._last is not None and now - self._last < self.interval:
            return None
        self._last = now
        counts, self._since = self._since, Counter()
        return counts
