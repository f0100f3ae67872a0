"""
The connector types by name: what the ``type:`` of a source or destination in channel YAML
refers to.

An explicit table rather than import-time registration: adding a connector is one import and
one line here, and what exists can be read in one place without importing every module for
its side effects. The configuration loader gets every spec from :func:`connector_specs`; the
composition root (``engine/app.py``) builds the connectors with :func:`build_source` and
:func:`build_destination` and never names a concrete class.

test-case-name: tests.channels.test_registry
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from channels.file_destination import SPEC as FILE_DESTINATION_SPEC, FileDestination
from channels.mllp_destination import SPEC as MLLP_DESTINATION_SPEC, MLLPDestination
from channels.mllp_source import SPEC as MLLP_SOURCE_SPEC, MLLPSource
from channels.xds_destination import SPEC as XDS_DESTINATION_SPEC, XDSDestination
from channels.xds_source import SPEC as XDS_SOURCE_SPEC, XDSSource
from engine.interfaces import ConnectorConfig, ConnectorSpec, Destination, Source


@dataclass(frozen=True)
class SourceType:
    """A source type: its spec, and ``factory(name, channel, options, receiver, reactor)``."""

    spec: ConnectorSpec
    factory: Callable[..., Source]


@dataclass(frozen=True)
class DestinationType:
    """A destination type: its spec, and ``factory(name, channel, lane, options, reactor)``."""

    spec: ConnectorSpec
    factory: Callable[..., Destination]


SOURCES: dict[str, SourceType] = {
    "mllp": SourceType(MLLP_SOURCE_SPEC, MLLPSource),
    "xds": SourceType(XDS_SOURCE_SPEC, XDSSource),
}

DESTINATIONS: dict[str, DestinationType] = {
    "mllp": DestinationType(MLLP_DESTINATION_SPEC, MLLPDestination),
    "file": DestinationType(FILE_DESTINATION_SPEC, FileDestination),
    "xds": DestinationType(XDS_DESTINATION_SPEC, XDSDestination),
}


def connector_specs() -> dict[tuple[str, str], ConnectorSpec]:
    """Every registered spec by (role, type name), as ``load_engine_config`` takes them."""
    specs = {("source", name): entry.spec for name, entry in SOURCES.items()}
    specs.update({("destination", name): entry.spec for name, entry in DESTINATIONS.items()})
    return specs


def build_source(config: ConnectorConfig, channel: str, receiver: Any, reactor: Any) -> Source:
    """The source of ``channel`` described by ``config``, handing messages to ``receiver``.

    Raises :class:`ValueError` for an unknown type or options the connector refuses.
    """
    entry = _lookup(SOURCES, "source", config.type_name)
    return entry.factory(config.name, channel, config.options, receiver, reactor)


def build_destination(config: ConnectorConfig, channel: str, lane: int,
                      reactor: Any) -> Destination:
    """One :class:`Destination` for one delivery ``lane`` of ``config``.

    Build one per lane: lanes send in parallel, each over its own connection, and the engine
    never calls ``send`` on an instance before its previous send finished. Raises
    :class:`ValueError` for an unknown type or options the connector refuses.
    """
    entry = _lookup(DESTINATIONS, "destination", config.type_name)
    return entry.factory(config.name, channel, lane, config.options, reactor)


def _lookup(table: dict[str, Any], role: str, type_name: str) -> Any:
    try:
        return table[type_name]
    except KeyError:
        raise ValueError(f'unknown {role} type "{type_name}"; known {role} types: '
                         f"{', '.join(sorted(table))}") from None
