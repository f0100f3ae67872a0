"""
The typed settings the loader (:mod:`engine.config.loader`) builds from ``engine.yaml`` and the
channel files: what the rest of the engine reads, frozen, every value already checked. A
channel's mappings are carried compiled (:class:`mappings.steps.Program`), never as YAML.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from engine.config.admin import AdminConfig
from engine.config.decisions import DecisionsConfig
from engine.config.identity import IdentityConfig
from engine.config.schema import ConfigProblem
from engine.config.shared_record import SharedRecordConfig
from engine.config.store import StoreConfig
from engine.flow.response import ResponsePolicy
from engine.interfaces import ConnectorConfig

__all__ = ["BrokenChannel", "ChannelConfig", "DestinationConfig", "EngineConfig",
           "OrderingPolicy", "RetryPolicy", "VALIDATION_LEVELS", "VALIDATION_NONE",
           "VALIDATION_STRUCTURE"]

VALIDATION_NONE = "none"
VALIDATION_STRUCTURE = "structure"
VALIDATION_LEVELS = (VALIDATION_NONE, VALIDATION_STRUCTURE)


@dataclass(frozen=True)
class RetryPolicy:
    """How a destination retries: exponential backoff, capped, for at most ``max_attempts``."""

    max_attempts: int = 10
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 300.0

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait before retrying after failed ``attempt`` (1 for the first try)."""
        if attempt < 1:
            raise ValueError(f"attempts are counted from 1, got {attempt}")
        try:
            delay = self.initial_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.max_delay
        return min(delay, self.max_delay)


@dataclass(frozen=True)
class OrderingPolicy:
    """Which deliveries keep their order: all of a destination's, or each patient's."""

    key: str = "destination"
    lanes: int = 1


@dataclass(frozen=True)
class DestinationConfig:
    """One destination of a channel, with its connector, retry and ordering policies."""

    name: str
    connector: ConnectorConfig
    retry: RetryPolicy
    ordering: OrderingPolicy
    file: str
    line: int
    steps: Any = None  # mappings.steps.Program of this destination's ``steps:``, or None
    shared_record: bool = False  # nothing for a patient who opposed sharing (engine.flow.consent)
    transform: Any = None  # the channel's then its own transform (TransformChain), or None


@dataclass(frozen=True)
class ChannelConfig:
    """One channel file: a source, how to acknowledge, and where messages go."""

    name: str
    description: str
    enabled: bool
    source: ConnectorConfig
    response: ResponsePolicy
    encoding: str
    dedupe: bool
    destinations: tuple[DestinationConfig, ...]
    file: str
    line: int  # the line of the channel's ``name:``
    # Mappings, compiled at load (mappings.steps.Program), None when the file has none.
    filters: Any = None
    steps: Any = None
    tables: Mapping[str, Any] = field(default_factory=dict)  # name -> mappings.tables.CodeTable
    validation: str = VALIDATION_NONE
    version: str | None = None  # validate as this version whatever MSH-12 says (see CHANNEL_SECTION)
    slow: bool = False  # decide its messages off the reactor thread (engine.flow.plan)
    identity: Any = None  # its identity: step (engine.config.identity.IdentityStepConfig)
    consent: Any = None  # engine.flow.consent.ConsentPlan of its ``consent:``, or None
    transform: Any = None  # its ``transform:`` (engine.config.transforms), or None
    # Other files read to build the channel (code tables...), compared by a reload.
    inputs: tuple[str, ...] = ()

    @property
    def has_mappings(self) -> bool:
        """Whether the channel has steps, filters or validation (more than routing)."""
        return (self.filters is not None or self.steps is not None
                or self.validation != VALIDATION_NONE
                or any(d.steps is not None or d.transform is not None
                       for d in self.destinations))


@dataclass(frozen=True)
class EngineConfig:
    """``engine.yaml`` and every channel it names, validated."""

    path: str
    node: str
    store: StoreConfig
    admin: AdminConfig | None
    log_level: str
    channels: tuple[ChannelConfig, ...]
    broken: tuple[BrokenChannel, ...] = ()  # channel files a lenient load left out
    identity: IdentityConfig = IdentityConfig()  # the patient index (engine.config.identity)
    shared_record: SharedRecordConfig | None = None  # the served XDS.b registry/repository
    registries: Mapping[str, Any] = field(default_factory=dict)  # name -> RegistryConfig
    decisions: DecisionsConfig = DecisionsConfig()  # engine.config.decisions


class BrokenChannel(NamedTuple):
    """A channel file a lenient load left out: its name when it could be read, its problems."""

    file: str
    name: str | None
    problems: list[ConfigProblem]
