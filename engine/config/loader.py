"""
Loading ``engine.yaml`` and the channel files it names into validated, typed settings.

Integration engineers edit these files by hand, often while a hospital waits; the loader's job
is to turn every mistake into a message naming the file, line and field, all of them in one
run, before anything listens on a port. It raises :class:`ConfigError` listing every problem
found in ``engine.yaml`` and in every channel file, sorted by file and line, e.g.::

    config/channels/adt.yaml:12: destinations[0].retry.max_delay: expected a duration like "30s" or "5m", got "5 parsecs"

The loader knows no concrete connector type: the caller passes the ``ConnectorSpec`` of each
registered type, and a connector's options are validated by the same table-driven code
(:func:`engine.config.schema.validate_section`) as the engine's own sections below. Adding a
section such as ``filters:`` is adding a row to ``CHANNEL_SECTION`` and a table of its own.
How durations, sizes and paths are written is described in :mod:`engine.config.schema`;
a channel's ``encoding`` is checked with :func:`mllp.header.resolve_codec`, the one table of
character sets, so that a name decoding would refuse is refused here first.

Mappings are compiled here, at load, not when the engine starts: a channel's ``tables:`` (code
table files, read once with :func:`engine.config.tablefiles.read_table_file`), ``filters:``, ``steps:``
and each destination's ``steps:`` become :class:`mappings.steps.Program` objects on the
:class:`ChannelConfig`, so that ``check-config`` reports a bad path, an unknown table or step, a
bad expression or a broken table file with every other problem, each at its file and line, and
the engine only runs what was checked. A ``route`` step naming a destination the channel does
not have is an error too. An ``include:`` step names a mapping file, read here with its tables
(:mod:`engine.config.includes`) and compiled inline. ``validation: structure`` asks for hl7apy's
structural validation of every inbound message (in the pipeline, off the ACK path). The
``response:`` block becomes an :class:`engine.flow.response.ResponsePolicy`. Across files, once all
are read: channel names are unique, no two listeners share a port, and ``channel`` destinations
name enabled channels without going round in a cycle (:mod:`engine.config.links`).

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

import os
import socket
from typing import Any, Mapping, NamedTuple

from engine.config.admin import ADMIN_SECTION, admin_config, admin_port_where
from engine.config.decisions import DECISIONS_SECTION, decisions_config
from engine.config.shared_record import (
    REFUSALS_CHANNEL, SHARED_RECORD_SECTION, shared_record_config, shared_record_listeners)
from engine.config.store import (  # noqa: F401 (part of this module's API)
    STORE_SECTION, resolve_database_url, store_config)
from engine.config.schema import (  # noqa: F401 (ConfigProblem: part of this module's API)
    ConfigError, ConfigProblem, Problems, Section, Where, at_least, between, describe,
    did_you_mean, item_position, key_position, matches, read_top_mapping, top_where,
    validate_section)
from engine.interfaces import ConnectorConfig, ConnectorSpec, OptionSpec
from engine.config.identity import (
    IDENTITY_SECTION, STEP_SECTION, check_identity_steps, identity_config, identity_step)
from engine.config.channelfiles import channel_files
from engine.config.links import Link, check_links, read_links
from engine.config.listeners import check_listeners
from engine.config.programs import (
    channel_programs, check_routes, check_validator, compile_program, read_channel_includes,
    read_tables)
from engine.config.settings import (
    VALIDATION_LEVELS, VALIDATION_NONE, VALIDATION_STRUCTURE, BrokenChannel, ChannelConfig,
    DestinationConfig, EngineConfig, OrderingPolicy, RetryPolicy)
from engine.config.stepspath import use_steps_path
from engine.config.transforms import TRANSFORM_OPTION, read_transforms
from engine.config.response import RESPONSE_SECTION, response_policy
from engine.config.consent import consent_plan
from engine.config.registries import registries_config
from engine.config.yamlsource import YAMLMapping
from mllp.header import resolve_codec

Specs = Mapping[tuple[str, str], ConnectorSpec]  # (role, type_name) -> spec

LOG_LEVELS = ("debug", "info", "warning", "error")
ORDERING_KEYS = ("destination", "patient")
# The HL7 v2 versions whose message structures the validator (hl7apy) knows.
HL7_VERSIONS = ("2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8",
                "2.8.1", "2.8.2")
DEFAULT_CHARSET = "UNICODE UTF-8"
# Names end up in metric labels, log lines and database rows: keep them boring.
_IDENTIFIER = matches(
    r"[a-z0-9][a-z0-9_-]*",
    "use lower-case letters, digits, '-' and '_', starting with a letter or digit")
_PATIENT_LANES = 4  # default number of lanes when ordering by patient


def _known_charset(name: str) -> str | None:
    """Refuse at load time a character set that decoding would refuse on every message."""
    try:
        resolve_codec(name)
    except LookupError:
        return (f"unknown character set {describe(name)}: use an HL7 table 0211 name "
                'such as "8859/1" or "UNICODE UTF-8"')
    return None


ENGINE_SECTION = Section(
    (OptionSpec("node", "str", help="this node's name; default: the host name"),
     OptionSpec("store", "mapping", required=True),
     OptionSpec("admin", "mapping"),
     OptionSpec("shared_record", "mapping", help="the built-in XDS.b registry/repository"),
     OptionSpec("channels", "list", default=[], help="channel file globs"),
     OptionSpec("log_level", "str", default="info", choices=LOG_LEVELS),
     OptionSpec("steps_path", "path", help="where python: steps' modules are"),
     OptionSpec("identity", "mapping", help="the patient index: domains, target, matching"),
     OptionSpec("registries", "mapping", help="XDS.b registries by name (aiguillage xds)"),
     OptionSpec("decisions", "mapping", help="worker processes for CPU-bound steps")),
    nested={"store": STORE_SECTION, "admin": ADMIN_SECTION, "identity": IDENTITY_SECTION,
            "shared_record": SHARED_RECORD_SECTION, "decisions": DECISIONS_SECTION})

RETRY_SECTION = Section(
    (OptionSpec("max_attempts", "int", default=10),
     OptionSpec("initial_delay", "duration", default=1),
     OptionSpec("multiplier", "float", default=2.0),
     OptionSpec("max_delay", "duration", default=300)),
    checks={"max_attempts": at_least(1), "multiplier": at_least(1)})
ORDERING_SECTION = Section(
    (OptionSpec("key", "str", default="destination", choices=ORDERING_KEYS),
     OptionSpec("lanes", "int", help=f"default 1, or {_PATIENT_LANES} with key: patient")),
    checks={"lanes": between(1, 64)})
# Connector sections: these built-in options, then the ConnectorSpec's own.
SOURCE_SECTION = Section((OptionSpec("type", "str", required=True),))
DESTINATION_SECTION = Section(
    (OptionSpec("name", "str", required=True),
     OptionSpec("type", "str", required=True),
     OptionSpec("retry", "mapping", default={}),
     OptionSpec("ordering", "mapping", default={}),
     OptionSpec("steps", "list", help="mapping steps applied for this destination only"),
     OptionSpec("shared_record", "bool", default=False,
                help="the shared record: nothing for a patient who opposed sharing"),
     TRANSFORM_OPTION),
    nested={"retry": RETRY_SECTION, "ordering": ORDERING_SECTION},
    checks={"name": _IDENTIFIER})
CHANNEL_SECTION = Section(
    (OptionSpec("name", "str", required=True),
     OptionSpec("description", "str", default=""),
     OptionSpec("enabled", "bool", default=True),
     OptionSpec("source", "mapping", required=True),
     OptionSpec("response", "mapping", default={}),
     OptionSpec("encoding", "str", default=DEFAULT_CHARSET,
                help="HL7 table 0211 name (or Python codec) used when MSH-18 is empty"),
     OptionSpec("dedupe", "bool", default=True),
     OptionSpec("destinations", "list", required=True),
     OptionSpec("tables", "mapping", help="code tables: name -> CSV or YAML file"),
     OptionSpec("filters", "list", help="conditions a message must all meet, else FILTERED"),
     OptionSpec("steps", "list", help="mapping steps applied to every message"),
     OptionSpec("validation", "str", default=VALIDATION_NONE, choices=VALIDATION_LEVELS,
                help="structure: validate inbound messages against their HL7 structure"),
     OptionSpec("version", "str", choices=HL7_VERSIONS,
                help="the HL7 version the senders speak: structural validation checks every "
                     "message against this version's structures, whatever its MSH-12 says"),
     OptionSpec("slow", "bool", default=False, help="decide messages in a worker thread"),
     OptionSpec("identity", "mapping", help="resolve, feed, rewrite PID-3, answer PIX/PDQ"),
     OptionSpec("consent", "mapping", help="the field carrying the patient's opposition"),
     TRANSFORM_OPTION),
    nested={"response": RESPONSE_SECTION, "identity": STEP_SECTION},
    checks={"name": _IDENTIFIER, "encoding": _known_charset,
            "destinations": lambda items: None if items else "a channel needs a destination"})


def load_engine_config(path: str | os.PathLike, specs: Specs,
                       lenient: bool = False) -> EngineConfig:
    """Load ``engine.yaml`` at ``path`` and its channel files; raise :class:`ConfigError`.

    ``specs`` maps (role, type name) to each registered connector's spec. ``lenient`` (for
    commands that run no channel, or one): a channel file with problems is left out and
    listed in ``broken``, instead of the whole configuration being refused.
    """
    path = os.fspath(path)
    problems = Problems()
    root = read_top_mapping(path, problems)
    if root is None:
        problems.raise_if_any()
    where = top_where(path, root)
    values = validate_section(root, ENGINE_SECTION, where, problems)
    store = store_config(root, values["store"], where, problems)
    admin = admin_config(root, values["admin"], where, problems)
    shared_record = shared_record_config(root, values["shared_record"], where, problems)
    use_steps_path(values["steps_path"], where.child("steps_path"), problems)
    identity = identity_config(root, values["identity"], where, problems)
    registries = registries_config(root, where, problems)
    loaded, broken = [], []
    for file in channel_files(root, where, problems):
        own = Problems()
        channel = _read_channel(file, specs, own)
        if own and lenient:
            broken.append(BrokenChannel(file, channel and channel.channel.name, own.items))
            continue
        problems.items.extend(own.items)
        loaded.extend([channel] if channel is not None else [])
    _check_channel_names(loaded, problems)
    check_listeners(loaded, admin, admin_port_where(root, where), problems,
                    shared_record_listeners(root, where, values["shared_record"]))
    check_links([link for item in loaded for link in item.links],
                [item.channel for item in loaded], problems)
    check_identity_steps(identity, [item.channel.identity for item in loaded], problems)
    problems.raise_if_any()
    return EngineConfig(path=path, node=values["node"] or socket.gethostname(), store=store,
                        admin=admin, log_level=values["log_level"],
                        channels=tuple(item.channel for item in loaded), broken=tuple(broken),
                        identity=identity, shared_record=shared_record,
                        registries=registries, decisions=decisions_config(values["decisions"]))


def load_channel_file(path: str | os.PathLike, specs: Specs) -> ChannelConfig:
    """Load one channel file on its own; raise :class:`ConfigError` listing its problems."""
    problems = Problems()
    loaded = _read_channel(os.fspath(path), specs, problems)
    problems.raise_if_any()
    return loaded.channel


class _LoadedChannel(NamedTuple):
    """A channel with the places the checks across files point to."""

    channel: ChannelConfig
    name_at: Where
    port_at: Where | None  # where its source's ``port`` is written, if it is
    links: tuple[Link, ...] = ()  # its ``channel`` destinations, checked across files




def _read_channel(path: str, specs: Specs, problems: Problems) -> _LoadedChannel | None:
    root = read_top_mapping(path, problems)
    if root is None:
        return None
    where = top_where(path, root)
    values = validate_section(root, CHANNEL_SECTION, where, problems)
    name_at = where.child("name", root.key_position("name"))
    source_at = where.child("source", root.key_position("source"))
    inputs: list[str] = []
    tables = read_tables(root, values, where, problems, inputs)
    includes = read_channel_includes(root, where, tables, problems, inputs)
    destinations = _destinations(root, specs, where, problems, tables, includes)
    filters, steps = channel_programs(root, values, where, tables, problems, includes)
    check_routes(root, where, destinations, problems, includes)
    transform, destinations = read_transforms(root, values, where, tables, destinations,
                                              problems)
    if values["validation"] == VALIDATION_STRUCTURE:
        check_validator(root, where, problems)
    elif values["version"] is not None:
        problems.add(where.child("version", root.key_position("version")),
                     "version is the version structural validation checks against: it needs "
                     "validation: structure, and has no effect without it")
    channel = ChannelConfig(
        name=values["name"], description=values["description"], enabled=values["enabled"],
        source=_source(root.get("source"), values["name"], specs, source_at, problems),
        response=response_policy(root, values["response"], specs, where, problems),
        encoding=values["encoding"], dedupe=values["dedupe"], destinations=destinations,
        file=path, line=name_at.line, filters=filters, steps=steps, tables=tables,
        validation=values["validation"] or VALIDATION_NONE, version=values["version"],
        slow=values["slow"], inputs=tuple(dict.fromkeys(inputs)), transform=transform,
        identity=identity_step(root, values["identity"], where, problems),
        consent=consent_plan(root, where, problems))
    source = root.get("source")
    has_port = isinstance(source, YAMLMapping) and "port" in source
    port_at = source_at.child("port", source.key_position("port")) if has_port else None
    return _LoadedChannel(channel, name_at, port_at, read_links(root, where))


def _source(data: Any, channel: str | None, specs: Specs, where: Where,
            problems: Problems) -> ConnectorConfig | None:
    values = _connector(data, "source", SOURCE_SECTION, specs, where, problems)
    if values is None:
        return None
    return ConnectorConfig(values["type"], channel, values["options"], where.file, where.line)


def _connector(data: Any, role: str, builtins: Section, specs: Specs, where: Where,
               problems: Problems) -> dict | None:
    """Built-in values of a source or destination, plus ``options``: its spec's own."""
    if not isinstance(data, Mapping):
        return None  # CHANNEL_SECTION or _destination has already said so
    spec = _connector_spec(data, role, specs, where, problems)
    section = builtins if spec is None else builtins.extended(spec.options)
    values = validate_section(data, section, where, problems, allow_unknown=spec is None)
    builtin_names = {option.name for option in builtins.options}
    own = () if spec is None else [o.name for o in spec.options if o.name not in builtin_names]
    values["options"] = {name: values.pop(name) for name in own}
    return values


def _connector_spec(data: Mapping, role: str, specs: Specs, where: Where,
                    problems: Problems) -> ConnectorSpec | None:
    type_name = data.get("type")
    if not isinstance(type_name, str):
        return None  # missing or not a string: the built-in section reports it
    spec = specs.get((role, type_name))
    if spec is None:
        known = sorted(name for spec_role, name in specs if spec_role == role)
        listed = ", ".join(known) if known else "none is registered"
        problems.add(where.child("type", key_position(data, "type")),
                     f'unknown {role} type "{type_name}"{did_you_mean(type_name, known)}; '
                     f"known {role} types: {listed}")
    return spec


def _destinations(root: YAMLMapping, specs: Specs, where: Where,
                  problems: Problems, tables: Mapping | None = None, includes: Any = None
                  ) -> tuple[DestinationConfig, ...]:
    items = root.get("destinations")
    if not isinstance(items, list):
        return ()
    here = where.child("destinations", root.key_position("destinations"))
    destinations: list[DestinationConfig] = []
    first_at: dict[str, Where] = {}
    for index, item in enumerate(items):
        item_where = here.item(index, item_position(items, index))
        destination = _destination(item, specs, item_where, problems, tables or {}, includes)
        if destination is None or destination.name is None:
            continue
        if destination.name in first_at:
            earlier = first_at[destination.name]
            problems.add(item_where.child("name", key_position(item, "name")),
                         f'destination name "{destination.name}" is already used by '
                         f"{earlier.field} (line {earlier.line})")
        first_at.setdefault(destination.name, item_where)
        destinations.append(destination)
    return tuple(destinations)


def _destination(item: Any, specs: Specs, where: Where, problems: Problems,
                 tables: Mapping, includes: Any = None) -> DestinationConfig | None:
    if not isinstance(item, Mapping):
        problems.add(where, f"expected a mapping describing a destination, got {describe(item)}")
        return None
    values = _connector(item, "destination", DESTINATION_SECTION, specs, where, problems)
    connector = ConnectorConfig(values["type"], values["name"], values["options"],
                                where.file, where.line)
    steps = None
    raw = item.get("steps")
    if values.get("steps") and isinstance(raw, list):
        steps = compile_program("steps", raw, where.child("steps", key_position(item, "steps")),
                         tables, problems, includes)
    return DestinationConfig(values["name"], connector, _retry(values["retry"]),
                             _ordering(values["ordering"]), where.file, where.line, steps,
                             bool(values["shared_record"]))


def _retry(values: dict | None) -> RetryPolicy:
    return RetryPolicy(**values) if values else RetryPolicy()


def _ordering(values: dict | None) -> OrderingPolicy:
    if not values:
        return OrderingPolicy()
    lanes = values["lanes"]
    if lanes is None:
        lanes = _PATIENT_LANES if values["key"] == "patient" else 1
    return OrderingPolicy(key=values["key"], lanes=lanes)


def _check_channel_names(loaded: list[_LoadedChannel], problems: Problems) -> None:
    first_at: dict[str, Where] = {}
    for item in loaded:
        name = item.channel.name
        if name is None:
            continue
        if name == REFUSALS_CHANNEL:
            problems.add(item.name_at, f'channel name "{name}" is reserved: the shared '
                                       "record's refused requests are stored under it")
        elif name in first_at:
            earlier = first_at[name]
            problems.add(item.name_at, f'channel name "{name}" is also used by '
                                       f"{earlier.file}:{earlier.line}; names must be unique")
        else:
            first_at[name] = item.name_at


__all__ = [
    "ConfigError", "ConfigProblem", "load_engine_config", "load_channel_file",
    "resolve_database_url",
]
