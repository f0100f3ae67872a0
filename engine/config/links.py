"""
Which channels feed which: the checks on ``channel`` destinations across channel files.

A ``type: channel`` destination names another channel of the engine (see
:mod:`engine.flow.handover`). Only once every channel file is read can the loader tell whether it
names a channel that exists, one that is enabled, and whether the links go round: a → b → a,
or a → a, would send a message round and round until some channel's dedupe happened to stop
it, which is never what was meant. Each problem is reported at the line of the ``channel:``
option that causes it, like every other configuration error.

The cycle search is a pure function over names, tested on its own.

test-case-name: tests.config.test_links
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from engine.config.schema import (
    Problems, Where, describe, did_you_mean, item_position, key_position)
from engine.flow.handover import TARGET_OPTION, TYPE


@dataclass(frozen=True)
class Link:
    """One ``channel`` destination: ``channel``'s ``destination`` feeds ``target``."""

    channel: str
    destination: str
    target: str
    where: Where  # where its ``channel:`` option is written


def read_links(root: Mapping, where: Where) -> tuple[Link, ...]:
    """The ``channel`` destinations written in one channel file, with their places.

    Read from the YAML itself so that the place is the ``channel:`` line; what is malformed
    (no name, a target that is not text) is left out, the loader reports it.
    """
    name, items = root.get("name"), root.get("destinations")
    if not isinstance(name, str) or not isinstance(items, list):
        return ()
    here = where.child("destinations", key_position(root, "destinations"))
    links = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or item.get("type") != TYPE:
            continue
        target, destination = item.get(TARGET_OPTION), item.get("name")
        if isinstance(target, str) and isinstance(destination, str):
            at = here.item(index, item_position(items, index))
            links.append(Link(name, destination, target,
                              at.child(TARGET_OPTION, key_position(item, TARGET_OPTION))))
    return tuple(links)


def find_cycles(edges: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """The cycles of the graph ``edges`` (node -> the nodes it feeds), each as the walk
    ``(a, b, ..., a)`` ending on the edge that closes it.

    A depth-first walk from each node in sorted order; every edge that comes back to a node
    still on the walk closes one cycle. Every cycle of the graph shares at least one node
    with one reported, so an empty list means there is none.
    """
    cycles: list[tuple[str, ...]] = []
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> None:
        path.append(node)
        on_path.add(node)
        for target in edges.get(node, ()):
            if target in on_path:
                cycles.append(tuple(path[path.index(target):]) + (target,))
            elif target not in done:
                visit(target)
        on_path.discard(path.pop())
        done.add(node)

    for node in sorted(edges):
        if node not in done:
            visit(node)
    return cycles


def check_links(links: Iterable[Link], channels: Iterable[Any], problems: Problems) -> None:
    """Report links to unknown or disabled channels, and cycles.

    ``channels`` are the loaded :class:`~engine.config.settings.ChannelConfig` objects (their
    ``name``, ``enabled``, ``file`` and ``line``). A disabled channel's own links are
    checked for unknown targets and cycles, not for disabled targets: it runs nothing.
    """
    links = list(links)
    by_name = {channel.name: channel for channel in channels if channel.name is not None}
    enabled = {name for name, channel in by_name.items() if channel.enabled}
    known = sorted(by_name)
    edges: dict[str, list[str]] = {}
    for link in links:
        target = by_name.get(link.target)
        if target is None:
            problems.add(link.where, f"unknown channel {describe(link.target)}"
                                     f"{did_you_mean(link.target, known)}; known channels: "
                                     f"{', '.join(known)}")
            continue
        edges.setdefault(link.channel, []).append(link.target)
        if link.channel in enabled and not target.enabled:
            problems.add(link.where, f'channel "{link.target}" is disabled (enabled: false, '
                                     f"{target.file}:{target.line}): enable it, or remove "
                                     "this destination")
    for cycle in find_cycles(edges):
        closing = next(link for link in links
                       if (link.channel, link.target) == (cycle[-2], cycle[-1]))
        walk = cycle[-2:-1] + cycle[:-2] + cycle[-2:-1] if len(cycle) > 2 else cycle
        problems.add(closing.where, "channel destinations form a cycle: "
                                    f"{' -> '.join(walk)}; a channel cannot feed itself, "
                                    "even through others")


__all__ = ["Link", "read_links", "find_cycles", "check_links"]
