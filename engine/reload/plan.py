"""
What a reload changes: the running configuration compared with the one just read from disk.

A reload must leave alone what did not change (a sender connected to an unchanged channel
stays connected, a lane in the middle of a retry keeps its place) and redo only what did.
Loaded objects cannot tell that by themselves: compiled mapping programs and code tables do
not compare equal even when built from the same text, and a renewed TLS certificate keeps its
path. So each part is compared on what it was built from:

- a channel's *plan* (filters, steps, tables, destinations' steps) on the bytes of its
  channel file and of every other file its loading read (:attr:`ChannelConfig.inputs`);
- its *source* on its type and options, plus the bytes of the files its ``path`` options name;
- each *destination* on its type, options, retry and ordering, plus the same file bytes.

A file's bytes are known here by their digest (``digests``: path -> hex digest, or None when
the file could not be read); reading them is the caller's business (in a thread). Everything
in this module is pure.

Settings of engine.yaml itself (store, node, admin listener, log level, the shared record's
listener) are not reloaded: the store and the listeners of the engine itself are its
foundations. They are only reported. Its ``identity:`` (domains, target, matching) is
applied: the channels with an ``identity:`` step get new plans (their hooks are built from
it), the ``xds`` destinations read it at each delivery.

test-case-name: tests.reload.test_plan
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from engine.config.settings import ChannelConfig, DestinationConfig, EngineConfig
from engine.interfaces import ConnectorConfig, ConnectorSpec

Digests = Mapping[str, "str | None"]
Specs = Mapping[tuple[str, str], ConnectorSpec]

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"
# applied only by a restart
ENGINE_SETTINGS = ("store", "node", "admin", "log_level", "shared_record")


@dataclass(frozen=True)
class ChannelChange:
    """What a reload does to one channel.

    ``kind``: added, removed (or disabled), changed, unchanged. ``swap_plan``: the intake and
    decider get the channel's new plan. ``restart_source``: the source is stopped (removed,
    changed) and/or started (added, changed). ``stop_destinations`` lose their lanes (their
    configuration changed, or they are gone); ``start_destinations`` get new lanes.
    """

    name: str
    kind: str
    swap_plan: bool = False
    restart_source: bool = False
    stop_destinations: tuple[str, ...] = ()
    start_destinations: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReloadPlan:
    """Every channel's change, by name, and the engine settings that need a restart."""

    channels: tuple[ChannelChange, ...]
    needs_restart: tuple[str, ...] = ()
    identity_changed: bool = False  # engine.yaml's identity: differs: applied before the plans

    def of_kind(self, kind: str) -> list[ChannelChange]:
        return [change for change in self.channels if change.kind == kind]


def input_files(config: EngineConfig, specs: Specs) -> list[str]:
    """Every file whose bytes a comparison needs, for the caller to digest (sorted, once)."""
    files: set[str] = set()
    for channel in config.channels:
        files.add(channel.file)
        files.update(channel.inputs)
        connectors = [("source", channel.source)] + [
            ("destination", d.connector) for d in channel.destinations]
        for role, connector in connectors:
            files.update(value for _, value in _path_options(role, connector, specs))
    return sorted(files)


def plan_reload(running: EngineConfig, running_digests: Digests, loaded: EngineConfig,
                loaded_digests: Digests, specs: Specs, *,
                unfinished: Iterable[tuple[str, str | None]] = ()) -> ReloadPlan:
    """Compare the running configuration with ``loaded``: what to swap, restart, rebuild.

    ``unfinished``: what the previous reload could not start, (channel, None) for a source
    and (channel, destination) for lanes; they are started again, changed or not.
    """
    unfinished = frozenset(unfinished)
    before = {c.name: c for c in running.channels if c.enabled}
    after = {c.name: c for c in loaded.channels if c.enabled}
    identity_changed = running.identity != loaded.identity
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None:
            changes.append(ChannelChange(name, ADDED, swap_plan=True, restart_source=True,
                                         start_destinations=_names(new.destinations)))
        elif new is None:
            changes.append(ChannelChange(name, REMOVED, swap_plan=True, restart_source=True,
                                         stop_destinations=_names(old.destinations)))
        else:
            change = _compare_channel(old, running_digests, new, loaded_digests, specs,
                                      unfinished)
            if identity_changed and new.identity is not None and not change.swap_plan:
                change = replace(change, kind=CHANGED, swap_plan=True)  # its hook is rebuilt
            changes.append(change)
    needs_restart = tuple(setting for setting in ENGINE_SETTINGS
                          if getattr(running, setting) != getattr(loaded, setting))
    return ReloadPlan(tuple(changes), needs_restart, identity_changed)


def _compare_channel(old: ChannelConfig, old_digests: Digests, new: ChannelConfig,
                     new_digests: Digests, specs: Specs,
                     unfinished: frozenset) -> ChannelChange:
    swap_plan = channel_fingerprint(old, old_digests) != channel_fingerprint(new, new_digests)
    restart_source = (old.name, None) in unfinished or (
        connector_key("source", old.source, old_digests, specs)
        != connector_key("source", new.source, new_digests, specs))
    old_destinations = {d.name: d for d in old.destinations}
    new_destinations = {d.name: d for d in new.destinations}
    stop = tuple(name for name, d in old_destinations.items()
                 if name not in new_destinations or (old.name, name) in unfinished
                 or destination_key(d, old_digests, specs)
                 != destination_key(new_destinations[name], new_digests, specs))
    start = tuple(name for name in new_destinations
                  if name not in old_destinations or name in stop)
    changed = swap_plan or restart_source or stop or start
    return ChannelChange(old.name, CHANGED if changed else UNCHANGED,
                         swap_plan=bool(changed), restart_source=restart_source,
                         stop_destinations=stop, start_destinations=start)


def channel_fingerprint(channel: ChannelConfig, digests: Digests) -> tuple:
    """What a channel's plan is built from: its file and every other file it read."""
    files = (channel.file, *channel.inputs)
    return tuple((file, digests.get(file)) for file in files)


def connector_key(role: str, connector: ConnectorConfig, digests: Digests,
                  specs: Specs) -> tuple:
    """A connector as configured: type, options and the bytes of the files it names.

    Its file and line are left out: a comment added above a source must not restart it.
    """
    files = tuple((value, digests.get(value))
                  for _, value in _path_options(role, connector, specs))
    return (connector.type_name, connector.name, dict(connector.options), files)


def destination_key(destination: DestinationConfig, digests: Digests, specs: Specs) -> tuple:
    """What a destination's lanes are built from (its ``steps:`` belong to the plan)."""
    return (connector_key("destination", destination.connector, digests, specs),
            destination.retry, destination.ordering)


def _path_options(role: str, connector: ConnectorConfig | None,
                  specs: Specs) -> Iterable[tuple[str, str]]:
    """(option, path) of the connector's ``path`` options that are set."""
    if connector is None:
        return []
    spec = specs.get((role, connector.type_name))
    if spec is None:
        return []
    return [(option.name, connector.options[option.name]) for option in spec.options
            if option.kind == "path" and isinstance(connector.options.get(option.name), str)]


def _names(destinations: Iterable[DestinationConfig]) -> tuple[str, ...]:
    return tuple(d.name for d in destinations)


def running_config(running: EngineConfig, loaded: EngineConfig) -> EngineConfig:
    """What runs after a reload: ``loaded``'s channels, ``running``'s engine settings."""
    kept: dict[str, Any] = {setting: getattr(running, setting) for setting in ENGINE_SETTINGS}
    return replace(loaded, **kept)
