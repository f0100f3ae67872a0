"""
The composition root: builds a running engine from its configuration.

It is, with the CLI (engine/cli/), the only place in engine/ that imports channels/: everything else
talks to connectors through engine.interfaces. The engine's own ``channel`` source and
destination (engine/flow/handover.py: a channel feeding another) are built here too, the
destination with the intake it hands messages to. Start-up order makes the promise "persist
before acknowledge" hold from the first message: the store (schema checked, writer running),
then the flow (the decider of slow plans and the recovery scan, whose first page of RECEIVED
messages is queued before any new one) and the delivery lanes, and only then the sources start
listening, then the shared record (the built-in XDS.b registry/repository of engine.yaml's
``shared_record:``, engine/serve/shared_record.py) and the admin listener. Shutdown runs the other
way: stop accepting, let the decisions under way and the writer commit, close destinations.

An engine process runs in one or both *roles* (:data:`ROLES`): ``intake`` (sources, the flow)
and ``delivery`` (the lanes). ``aiguillage run --workers N`` runs delivery in processes of its
own, ``--listeners M`` intake in several processes sharing the MLLP ports (see
:mod:`engine.workers`); every process, whatever its roles, heartbeats in the ``nodes`` table.

test-case-name: tests.e2e.test_engine
"""
from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from channels import registry
from engine.flow import handover
from engine.config.loader import load_engine_config
from engine.config.settings import ChannelConfig, DestinationConfig, EngineConfig, RetryPolicy
from engine.delivery.lane import Lane, LaneKey
from engine.flow.appack import APPLICATION_ACK
from engine.flow.appack_route import ApplicationAckDestination
from engine.flow.decider import Decider, in_process
from engine.filelimit import DescriptorWatch
from engine.delivery.lease import LeasePolicy, process_owner
from engine.delivery.service import DeliveryService
from engine.delivery.pgwake import PostgresWake
from engine.delivery.wakeup import NodeWakeup, WakeThrottle, directory_for
from engine.consent.lookup import StoreConsentLookup
from engine.flow.intake import Intake
from engine.flow.plan import ChannelPlan, DestinationPlan
from engine.flow.queued import LaneKeyTuple, QueuedWork
from engine.flow.recovery import Recovery
from engine.identity.hook import IdentityHooks
from engine.identity.xds import XDSWiring
from engine.interfaces import ConsentLookup
from engine.nodes import STALE_AFTER, NodeHeartbeat
from engine.heap import unsettled
from engine.reload.reloader import REFUSED, Reloader
from engine.serve import shared_record
from engine.store.store import Store
from xds.transforms.payload import document_patient
from engine.workers.decide_pool import DecisionProcesses, default_processes

log = logging.getLogger(__name__)

INTAKE, DELIVERY = "intake", "delivery"
REMOTE_WAKE_EVERY = 0.05  # seconds between two wakes of a lane by other processes (bench/README.md)
ROLES = (INTAKE, DELIVERY)  # an engine process runs one or both
# Application ACKs: a few quick tries (a return route briefly down), then ERROR for replay.
APPLICATION_ACK_RETRY = RetryPolicy(max_attempts=5, initial_delay=1.0, multiplier=2.0,
                                    max_delay=30.0)


def connector_specs() -> dict:
    """Every connector type by (role, type name): those registered in ``channels/``, and the
    engine's own ``channel`` source and destination (see :mod:`engine.flow.handover`)."""
    return {**registry.connector_specs(), **handover.SPECS}


def load_config(path: str, lenient: bool = False) -> EngineConfig:
    """Load ``engine.yaml`` and its channels, validated against the registered connectors
    (``lenient``: see :func:`engine.config.loader.load_engine_config`)."""
    return load_engine_config(path, connector_specs(), lenient)


def build_source(config: Any, channel: str, receiver: Any, reactor: Any) -> Any:
    """A channel's source: a registered connector, or the engine's ``channel`` source."""
    if config.type_name == handover.TYPE:
        return handover.ChannelSource(config.name, channel, config.options)
    return registry.build_source(config, channel, receiver, reactor)


def build_destination(config: Any, channel: str, lane: int, reactor: Any, intake: Any,
                      xds: XDSWiring | None = None) -> Any:
    """One lane's destination: a registered connector, or a hand-over to another channel.

    The ``channel`` destination is the only one that needs the engine itself (its intake), so
    it is built here rather than by the registry, whose factories know only their options.
    An ``xds`` destination's ``affinity_domain:`` and ``dmp:`` become its hooks here
    (``xds``: the engine's :class:`engine.identity.xds.XDSWiring`, over its identity index).
    """
    if config.type_name == handover.TYPE:
        return handover.ChannelDestination(config.name, channel, lane, config.options, intake)
    if xds is not None:
        config = xds.connector(config)
    return registry.build_destination(config, channel, lane, reactor)


def check_connectors(config: EngineConfig, reactor: Any) -> list[str]:
    """Build every source and destination without starting them; return their complaints.

    What only a connector knows (TLS files that cannot be read, a bad filename template, a
    zero timeout) is then reported like any configuration error, with its file and line,
    by ``check-config`` and before ``run`` listens on anything.
    """
    problems: list[tuple[str, int, str]] = []
    xds = XDSWiring(lambda: config.identity)  # checks the options; opens no index
    for channel in config.channels:
        built = [(channel.source, lambda c=channel: build_source(
            c.source, c.name, None, reactor))]
        built += [(d.connector, lambda d=d, c=channel: build_destination(
            d.connector, c.name, 0, reactor, None, xds)) for d in channel.destinations]
        for connector, build in built:
            try:
                build()
            except (ValueError, OSError) as error:
                problems.append((connector.file, connector.line, str(error)))
    return [f"{file}:{line}: {text}" for file, line, text in sorted(problems)] + \
        shared_record.check(config.shared_record)


SHARED_RECORD_TYPES = frozenset({"xds"})  # destination types that feed the shared record


def channel_plan(channel: ChannelConfig, identity: Any = None,
                 consent_lookup: ConsentLookup | None = None) -> ChannelPlan:
    """What the intake and the pipeline need of a channel's configuration; ``identity``,
    the hook of its ``identity:`` step (engine.identity.hook), built by the engine;
    ``consent_lookup``, where its shared-record destinations find a patient's opposition
    (the store's)."""
    destinations = tuple(
        DestinationPlan(d.name, d.ordering.key, d.ordering.lanes, steps=d.steps,
                        shared_record=(d.shared_record
                                       or d.connector.type_name in SHARED_RECORD_TYPES),
                        transform=d.transform)
        for d in channel.destinations
    )
    return ChannelPlan(channel.name, destinations, encoding=channel.encoding,
                       response=channel.response, dedupe=channel.dedupe,
                       filters=channel.filters, steps=channel.steps,
                       validation=channel.validation, version=channel.version,
                       marked_slow=channel.slow, identity=identity, consent=channel.consent,
                       consent_lookup=consent_lookup, document_patient=document_patient)


def worker_plans(config_path: str) -> dict[str, ChannelPlan]:
    """The plans a decision worker process builds for itself (engine.workers.decide_child):
    those of the enabled channels that it may decide, read from ``config_path``."""
    config = load_config(config_path, lenient=True)
    plans = {c.name: channel_plan(c) for c in config.channels
             if c.enabled and c.identity is None}
    return {name: plan for name, plan in plans.items() if plan.slow and in_process(plan)}


def decision_processes(config: EngineConfig, reactor: Any) -> DecisionProcesses | None:
    """The worker processes of CPU-bound slow plans; None: ``decisions: {processes: 0}``."""
    count = config.decisions.processes
    count = default_processes() if count is None else count
    if count == 0:
        return None
    return DecisionProcesses(reactor, count, config.path, worker_plans)


class Engine:
    """A running Aiguillage process: store, intake and decider, lanes and sources.

    ``roles``: what this process runs (:data:`ROLES`, both by default); a ``delivery``-only
    process has no sources, an ``intake``-only one no lanes. ``reuse_port``: its MLLP sources
    share their ports with the node's other listener processes (``SO_REUSEPORT``).
    ``serve_admin``: False in a child process, whose parent holds the admin port.
    """

    def __init__(self, config: EngineConfig, reactor: Any, *, poll_interval: float = 1.0,
                 roles: tuple[str, ...] = ROLES, reuse_port: bool = False,
                 serve_admin: bool = True):
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"engine roles must be among {ROLES}, not {sorted(roles)}")
        self.config = config
        self.roles = tuple(r for r in ROLES if r in roles)
        self._reuse_port = reuse_port
        self._serve_admin = serve_admin
        self._reactor = reactor
        self._poll_interval = poll_interval
        self.store = Store(config.store.url, reactor, node=config.node,
                           batch_max=config.store.writer_batch_max,
                           sqlite_synchronous=config.store.sqlite_synchronous.upper())
        channels = [c for c in config.channels if c.enabled]
        self.identity = IdentityHooks(config.identity, self.store)  # the identity: steps
        self.xds = XDSWiring(lambda: self.identity.config, self.identity.index)
        self.consent = StoreConsentLookup(self.store.engine)
        self.plans = {c.name: channel_plan(c, self.identity.for_channel(c), self.consent)
                      for c in channels}
        self._build_flow(reactor, poll_interval)
        self.delivery = self._build_delivery(config, reactor, poll_interval)
        # the node's other processes: woken when this one queues work for their lanes
        self.wakeup = NodeWakeup(directory_for(config.path, config.node), reactor,
                                 every=REMOTE_WAKE_EVERY)  # the receivers' pace
        self._woken = WakeThrottle(reactor, self._wake_lanes, every=REMOTE_WAKE_EVERY)
        # ...and, sharing a PostgreSQL store, the other nodes' processes
        self.pg_wake = None if self.store.engine.dialect.name != "postgresql" else \
            PostgresWake(self.store.dedicated_connection, reactor, config.node,
                         stale_after=STALE_AFTER)
        self.senders: dict[LaneKey, Any] = {}  # each lane's destination connector
        self.sources: dict[str, Any] = {}
        self._channels = channels
        self._reloader = Reloader(self, reactor, specs=connector_specs(), load=load_config,
                                  check=check_connectors)
        self.admin_port: Any = None  # the admin listener once started (IListeningPort)
        # the built-in XDS.b registry/repository: served by the intake process that holds the
        # admin port (not by --workers/--listeners children, nor a delivery-only process)
        self.shared_record = shared_record.SharedRecordService(
            config.shared_record, self.store, reactor) \
            if config.shared_record is not None and serve_admin and INTAKE in self.roles \
            else None
        self.heartbeat = NodeHeartbeat(self.store.writer, reactor, node=config.node,
                                       role="+".join(self.roles), counters=self._counters)

    def _build_flow(self, reactor: Any, poll_interval: float) -> None:
        """The intake, the decider of slow plans and the recovery scan, sharing
        :attr:`plans`; lanes are told of committed work through :meth:`work_queued`."""
        self.queued = QueuedWork(reactor, self.work_queued)
        self.decider = Decider(self.store, reactor, self.plans, self.queued,
                               processes=decision_processes(self.config, reactor))
        self.recovery = Recovery(self.store, reactor, self.decider, self.plans,
                                 scan_interval=poll_interval)
        self.intake = Intake(self.store, self.plans, self.decider, self.queued)
        self.descriptor_watch = DescriptorWatch(reactor)  # warns near the open-file limit

    def _build_delivery(self, config: EngineConfig, reactor: Any,
                        poll_interval: float) -> DeliveryService:
        """The delivery service: this process's lanes, claimed in the store with leases."""
        return DeliveryService(self.store, reactor, process_owner(config.node),
                               lease=LeasePolicy(config.store.lease_ttl),
                               poll_interval=poll_interval)

    @property
    def lanes(self) -> dict[LaneKey, Lane]:
        """Every lane this process runs (held or not), by key."""
        return self.delivery.lanes

    def start(self) -> defer.Deferred:
        """Start everything; Deferred fires once every source listens.

        Checking the schema blocks briefly, so it happens here, before any source serves.
        """
        self.store.start()
        self.descriptor_watch.start()
        processes = self.decider.processes
        if processes is not None and INTAKE in self.roles and any(
                p.slow and in_process(p) for p in self.plans.values()):
            processes.warm()  # the first messages do not wait for a process to start
        self._reloader.start(self.config)
        self.heartbeat.start()
        self.wakeup.start(self._woken)
        if self.pg_wake is not None and DELIVERY in self.roles:
            self.pg_wake.listen(self._woken)
        self._start_delivery()
        listening = self._start_intake()
        if self.shared_record is not None:
            listening.addCallback(lambda _: self.shared_record.start())
        if self.config.admin is not None and self._serve_admin:
            listening.addCallback(lambda _: self._start_admin(self.config.admin))
        return listening.addCallback(lambda _: self)

    def _start_delivery(self) -> None:
        """The delivery role: every destination's lanes. None in an intake-only process."""
        if DELIVERY not in self.roles:
            return
        for channel in self._channels:
            for destination in channel.destinations:
                self.start_lanes(channel.name, destination)
        self.delivery.start()

    def _start_intake(self) -> defer.Deferred:
        """The intake role: the flow, then every source once the recovery scan's first page
        is queued (so that a channel's new messages are decided after its old ones); Deferred
        firing once they listen. Nothing in a delivery-only process."""
        if INTAKE not in self.roles:
            return defer.succeed(None)
        self.decider.start()
        for channel in self._channels:
            self.start_application_ack_lane(channel)
        if DELIVERY not in self.roles:  # the application-ack lanes only
            self.delivery.start()
        recovered = self.recovery.start()
        return recovered.addCallback(lambda _: defer.gatherResults(
            [self.start_source(channel) for channel in self._channels], consumeErrors=True))

    def _counters(self) -> tuple[int, int]:
        """(messages received, deliveries sent) by this process, for its heartbeat."""
        return self.intake.received, sum(lane.sent for lane in self.lanes.values())

    def _start_admin(self, admin: Any) -> defer.Deferred:
        """Listen for the admin site; its token is read (or created) here, once, blocking
        briefly as the schema check does, before anything serves."""
        from twisted.internet.endpoints import TCP4ServerEndpoint

        from engine.serve.admin import admin_site
        from engine.serve.adminauth import AdminGuard, load_or_create_token

        try:
            token = admin.token or load_or_create_token(admin.token_file)
        except (OSError, ValueError) as error:
            return defer.fail(RuntimeError(f"admin token: {error}"))
        guard = AdminGuard.for_listener(token, admin.host, admin.allowed_hosts)
        endpoint = TCP4ServerEndpoint(self._reactor, admin.port, interface=admin.host)
        d = endpoint.listen(admin_site(self.store, self.stats, guard, reload=self.reload))
        d.addCallback(lambda port: setattr(self, "admin_port", port))
        return d

    # -- parts started and stopped one by one (start, stop, reload) -----------------------

    def start_source(self, channel: ChannelConfig) -> defer.Deferred:
        """Build and start ``channel``'s source; Deferred fires once it listens.

        Nothing to do in a process without the intake role (a reload calls this too)."""
        if INTAKE not in self.roles:
            return defer.succeed(None)
        source = build_source(channel.source, channel.name, self.intake, self._reactor)
        if self._reuse_port and hasattr(source, "reuse_port"):
            source.reuse_port = True
        self.sources[channel.name] = source
        return defer.maybeDeferred(source.start)

    def stop_source(self, name: str) -> defer.Deferred:
        """Stop channel ``name``'s source: frames already read are answered, then its
        connections close; Deferred."""
        source = self.sources.pop(name, None)
        return defer.succeed(None) if source is None else defer.maybeDeferred(source.stop)

    def start_lanes(self, channel: str, destination: DestinationConfig, *,
                    retry_now: bool = False) -> list[LaneKey]:
        """Build the lanes of one destination; they send once their leases are claimed, reading
        the destination's queue from the store.

        ``retry_now``: their first attempt does not wait for a retry time computed under a
        previous configuration of the destination. None in a process without the delivery
        role (a reload calls this too)."""
        if DELIVERY not in self.roles:
            return []
        keys = []
        for lane in range(destination.ordering.lanes):
            sender = build_destination(destination.connector, channel, lane, self._reactor,
                                       self.intake, self.xds)
            key = LaneKey(channel, destination.name, lane)
            self.senders[key] = sender
            sender.start()
            self.delivery.add_lane(key, sender, destination.retry, retry_now=retry_now)
            keys.append(key)
        return keys

    def start_application_ack_lane(self, channel: ChannelConfig) -> LaneKey | None:
        """The lane of ``channel``'s enhanced-mode application ACKs (engine.flow.appack_route),
        unless it runs already; None in a process without the intake role.

        It runs with the intake, in the process holding the senders' connections, whatever
        ``--workers`` says: a delivery worker holds none and could only use the return route.
        With several listener processes (``--listeners``) one of them holds the lane's lease;
        an application ACK whose connection another one holds goes by the return route."""
        key = LaneKey(channel.name, APPLICATION_ACK, 0)
        if INTAKE not in self.roles or key in self.lanes:
            return None
        route_config = channel.response.application_ack
        route = None if route_config is None else build_destination(
            route_config, channel.name, 0, self._reactor, self.intake)
        sender = ApplicationAckDestination(channel.name,
                                           lambda: self.sources.get(channel.name), route)
        self.senders[key] = sender
        sender.start()
        self.delivery.add_lane(key, sender, APPLICATION_ACK_RETRY)
        return key

    @defer.inlineCallbacks
    def stop_lanes(self, channel: str, destination: str) -> Any:
        """Stop one destination's lanes after their sends under way, wait until their outcomes
        are committed, give up their leases, close their connectors; Deferred. Queued
        deliveries stay QUEUED."""
        keys = [k for k in self.lanes if (k.channel, k.destination) == (channel, destination)]
        yield self.delivery.remove_lanes(keys)
        for key in keys:
            try:
                yield defer.maybeDeferred(self.senders.pop(key).stop)
            except Exception:
                log.exception("stopping destination %s/%s failed", channel, destination)

    def set_plan(self, channel: ChannelConfig) -> None:
        """Run ``channel``'s messages, from the next one, with its plan as configured now.

        The intake and the decider share :attr:`plans`: both see the new plan at once,
        the decider for every message it has not decided yet."""
        self.plans[channel.name] = channel_plan(channel, self.identity.for_channel(channel),
                                                self.consent)
        self.start_application_ack_lane(channel)

    def set_identity(self, config: Any) -> None:
        """Apply engine.yaml's ``identity:`` as reloaded (an IdentityConfig): the channels'
        ``identity:`` steps get it with their next plan (:meth:`set_plan`), the ``xds``
        destinations' lookups at their next delivery."""
        self.identity.reconfigure(config)

    def drop_plan(self, name: str) -> None:
        """Forget channel ``name``'s plan (its source stopped, its queued messages run)."""
        self.plans.pop(name, None)

    def reload(self) -> defer.Deferred:
        """Read the configuration again and apply what changed to the running engine.

        Deferred[engine.reload.reloader.ReloadReport]; see :mod:`engine.reload.reloader`.
        Unless refused, the decision worker processes are replaced before their next message:
        they build the new plans and import the ``python:`` steps' modules again."""
        return unsettled(self._reloader.reload).addCallback(self._refresh_processes)

    def _refresh_processes(self, report: Any) -> Any:
        if self.decider.processes is not None and report.outcome != REFUSED:
            self.decider.processes.refresh()
        return report

    def work_queued(self, keys: set[LaneKeyTuple]) -> None:
        """Deliveries were committed for the lanes ``keys`` (channel, destination, lane):
        wake each, here or in the node's other processes, so that it reads its queue from
        the store now rather than at its poll."""
        self.delivery.wake(keys)
        self.wakeup.tell(keys)
        if self.pg_wake is not None:
            self.pg_wake.tell(keys)

    def _wake_lanes(self, keys: list[LaneKeyTuple] | None) -> None:
        """Another process of the node queued work for ``keys`` (None: for any lane)."""
        self.delivery.wake(self.delivery.lanes if keys is None else keys)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Stop accepting, finish what is under way, commit, close; a Deferred."""
        yield self._reloader.stop()
        yield self.wakeup.stop()
        self._woken.cancel()
        if self.pg_wake is not None:
            yield self.pg_wake.stop()
        self.descriptor_watch.stop()
        if self.admin_port is not None:
            yield self.admin_port.stopListening()
        if self.shared_record is not None:
            yield self.shared_record.stop()
        for source in self.sources.values():
            try:
                yield defer.maybeDeferred(source.stop)
            except Exception:
                log.exception("stopping a source failed")
        yield self._stop_flow()
        yield self.delivery.stop()
        for destination in self.senders.values():
            try:
                yield defer.maybeDeferred(destination.stop)
            except Exception:
                log.exception("stopping a destination failed")
        yield self.heartbeat.stop()
        yield self.store.stop()
        log.info("stopped: %s", self.stats())

    def _stop_flow(self) -> defer.Deferred:
        """Stop scanning and deciding; Deferred firing once the decisions under way are
        submitted for commit (what is still queued stays RECEIVED for the next start)."""
        self.recovery.stop()
        d = self.decider.stop()
        d.addBoth(lambda _: self.queued.stop())
        return d

    def stats(self) -> dict:
        """Counters of this node since it started (for logs and the admin endpoint)."""
        writer = self.store.writer
        return {
            "process": self.heartbeat.process,
            "roles": list(self.roles),
            "writer_batches": writer.batches,
            "writer_items": writer.items,
            "writer_busy_seconds": round(writer.busy_seconds, 3),
            "received": self.intake.received,
            "decided_at_intake": self.intake.decided,
            "decided_in_threads": self.decider.decided,
            "sources": {name: source.stats() for name, source in self.sources.items()
                        if hasattr(source, "stats")},
            "lease_owner": self.delivery.owner,
            "lanes": self.delivery.stats(),
        }

    def source_port(self, channel: str) -> int | None:
        """The port a channel's source listens on (useful with port 0)."""
        return getattr(self.sources.get(channel), "port", None)
