"""
Across channel files: two listeners (channel sources, the admin listener, the shared
record's XDS.b listener) on one host and
port would fail to start; the loader reports the second one with where the first is.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from engine.config.schema import Problems, Where

__all__ = ["check_listeners"]


class _Listener(NamedTuple):
    host: str | None
    port: int
    where: Where
    label: str


_ANY_HOST = frozenset({None, "", "0.0.0.0", "::"})


def check_listeners(loaded: list[Any], admin: Any, admin_at: Where,
                    problems: Problems, others: Iterable[tuple] = ()) -> None:
    """Report two listeners on one host and port: the second would fail to start.

    ``others``: (host, port, where, label) of the engine's other listeners (the shared
    record's XDS.b listener), checked against the admin listener and each other first."""
    listeners = [_Listener(admin.host, admin.port, admin_at, "the admin listener")] \
        if admin and admin.port else []
    for other in (_Listener(*item) for item in others):
        _add(listeners, other, problems)
    for item in loaded:
        listener = _source_listener(item)
        if listener is not None:
            _add(listeners, listener, problems)


def _add(listeners: list[_Listener], listener: _Listener, problems: Problems) -> None:
    clash = next((other for other in listeners if _overlap(listener, other)), None)
    if clash:
        problems.add(listener.where,
                     f"{listener.label} listens on {listener.host or '*'}:{listener.port}, "
                     f"as does {clash.label} ({clash.where.file}:{clash.where.line})")
    listeners.append(listener)


def _source_listener(item: Any) -> _Listener | None:
    channel = item.channel
    if not channel.enabled or channel.source is None or item.port_at is None:
        return None
    port = channel.source.options.get("port")
    if not isinstance(port, int) or port == 0:
        return None
    return _Listener(channel.source.options.get("host"), port, item.port_at,
                     f'channel "{channel.name}"')


def _overlap(one: _Listener, other: _Listener) -> bool:
    """Whether two listeners conflict; an any-address bind takes the port on every address."""
    hosts_meet = one.host == other.host or one.host in _ANY_HOST or other.host in _ANY_HOST
    return one.port == other.port and hosts_meet
