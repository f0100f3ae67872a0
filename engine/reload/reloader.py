"""
Hot reload: read the configuration again and apply what changed to a running engine.

An integration engineer fixes a code table or a channel's steps and reloads (``aiguillage
reload``, or SIGHUP): the engine must pick the change up without dropping a connection it
does not have to, without losing a queued message, and without ever running a half-read
configuration. So a reload has two halves:

1. *Read*, in a thread (files are read with blocking calls): ``engine.yaml``, every channel
   file and its code tables, loaded and checked exactly as ``check-config`` does (connectors
   built, TLS files read), and the digest of every file the comparison needs. Any problem
   refuses the whole reload: nothing changes, and the report lists every error at its
   file:line. The engine keeps running its previous channels.
2. *Apply*, on the reactor thread, only what :func:`engine.reload.plan.plan_reload` found
   changed: sources that must stop stop (frames already read are answered), destination lanes
   being rebuilt stop after their send under way and once their outcomes are committed, plans
   are swapped (the next message, and every message received but not yet processed, runs the
   new plan), then new lanes and sources start. Queued deliveries live in the store: new lanes
   read them from there, in order; those of a removed channel or destination stay QUEUED.

Reloads are serialised: one waits for the previous one to finish. Settings of engine.yaml
itself (store, node, admin listener, log level) are reported as needing a restart; its
``identity:`` is applied before the plans are swapped.

The files of the configuration the engine started with are digested when it starts, in a
thread; a file edited between that first load and its digest would be taken as unchanged
by the first reload.

test-case-name: tests.e2e.test_reload
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from twisted.internet import defer, threads

from engine.reload import plan as rp
from engine.config.loader import ConfigError
from engine.config.settings import EngineConfig
from engine.store import queries

log = logging.getLogger(__name__)

RELOADED, REFUSED, FAILED = "reloaded", "refused", "failed"


@dataclass
class ReloadReport:
    """What a reload did, for the log, the admin endpoint and ``aiguillage reload``.

    ``outcome``: reloaded; refused (the configuration has ``errors``, nothing changed); or
    failed (applied, but a part in ``errors`` could not start, e.g. a port taken).
    """

    outcome: str
    config: str
    errors: list[str] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # name -> added, changed...
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "config": self.config, "errors": self.errors,
                "channels": self.channels, "changes": self.changes, "warnings": self.warnings}

    def lines(self) -> list[str]:
        """The report as text, one line per fact, worst news first."""
        if self.outcome == REFUSED:
            head = (f"reload refused: {self.config} has {len(self.errors)} error(s); "
                    "the engine keeps its previous channels")
        else:
            head = f"reload {self.outcome}: {self.config}"
        return ([head] + [f"error: {e}" for e in self.errors]
                + [f"warning: {w}" for w in self.warnings] + self.changes)


class ConfigRefused(Exception):
    """The configuration on disk cannot run; ``errors`` are ``file:line: text`` lines."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def digest_files(paths: Iterable[str]) -> dict[str, str | None]:
    """SHA-256 of each file's bytes, None if it is not a readable file. Blocking: a thread."""
    digests: dict[str, str | None] = {}
    for path in paths:
        try:
            with open(path, "rb") as stream:
                digests[path] = hashlib.sha256(stream.read()).hexdigest()
        except OSError:  # a directory (a file destination's), or gone
            digests[path] = None
    return digests


class Reloader:
    """Reloads one :class:`engine.app.Engine`, one reload at a time.

    ``load(path)`` and ``check(config, reactor)`` are how the engine loads its configuration
    and has its connectors checked (:func:`engine.app.load_config`,
    :func:`engine.app.check_connectors`); ``specs`` its connector types. The engine calls
    :meth:`start`, :meth:`reload` and :meth:`stop`, and the reloader calls the engine's
    ``start_source``, ``stop_source``, ``start_lanes``, ``stop_lanes``, ``set_plan``,
    ``drop_plan``.
    """

    def __init__(self, engine: Any, reactor: Any, *, specs: rp.Specs, load: Any, check: Any):
        self._engine = engine
        self._reactor = reactor
        self._specs = specs
        self._load = load
        self._check = check
        self._lock = defer.DeferredLock()
        self._running: EngineConfig | None = None
        self._digests: dict[str, str | None] = {}
        self._unfinished: frozenset = frozenset()  # parts the last reload could not start
        self._stopping = False

    def _read(self, path: str) -> tuple[EngineConfig, dict]:
        """Load and check the configuration, digest its files; raise :class:`ConfigRefused`.

        Runs in a thread: it reads every file, as ``check-config`` does (the connectors it
        builds are not started, and touch no reactor state).
        """
        try:
            config = self._load(path)
        except ConfigError as error:
            raise ConfigRefused([str(problem) for problem in error.problems]) from None
        problems = self._check(config, self._reactor)
        if problems:
            raise ConfigRefused(problems)
        return config, digest_files(rp.input_files(config, self._specs))

    def _in_thread(self, function: Any, *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                                         function, *args)

    def start(self, config: EngineConfig) -> None:
        """Remember what runs, and digest its files in a thread (a reload waits for it)."""
        self._running = config
        files = rp.input_files(config, self._specs)
        self._lock.run(self._in_thread, digest_files, files).addCallbacks(
            self._digested, lambda failure: log.error(
                "reading the configuration's files failed: %s", failure.getErrorMessage()))

    def _digested(self, digests: dict) -> None:
        self._digests = digests

    def stop(self) -> defer.Deferred:
        """Refuse reloads from now on; Deferred fires once the one under way is done."""
        self._stopping = True
        return self._lock.run(lambda: None)

    def reload(self) -> defer.Deferred:
        """Read the configuration again and apply it; Deferred[ReloadReport], never failing."""
        path = self._running.path if self._running else "?"
        if self._stopping or self._running is None:
            return defer.succeed(ReloadReport(REFUSED, path, ["the engine is not running"]))
        return self._lock.run(self._reload).addErrback(self._crashed, path)

    @defer.inlineCallbacks
    def _reload(self) -> Any:
        path = self._running.path
        try:
            loaded, digests = yield self._in_thread(self._read, path)
        except Exception as error:  # nothing is changed: the reload is refused
            errors = error.errors if isinstance(error, ConfigRefused) else [
                f"{path}: cannot be read: {type(error).__name__}: {error}"]
            report = ReloadReport(REFUSED, path, errors)
            _log(report)
            return report
        plan = rp.plan_reload(self._running, self._digests, loaded, digests, self._specs,
                              unfinished=self._unfinished)
        report = ReloadReport(RELOADED, path, channels={c.name: c.kind for c in plan.channels})
        application = _Application(self._engine, loaded, plan, report)
        yield application.run()
        self._running = rp.running_config(self._running, loaded)
        self._digests = digests
        self._unfinished = frozenset(application.unfinished)
        self._engine.config = self._running
        if report.errors:
            report.outcome = FAILED
        _log(report)
        return report

    def _crashed(self, failure: Any, path: str) -> ReloadReport:
        log.error("reload failed: %s", failure.getTraceback())
        return ReloadReport(FAILED, path, [f"the reload failed: {failure.getErrorMessage()}"])


def _log(report: ReloadReport) -> None:
    level = logging.INFO if report.outcome == RELOADED else logging.ERROR
    log.log(level, "%s", "\n  ".join(report.lines()))


class _Application:
    """One reload plan applied to the engine, writing what it does into the report."""

    def __init__(self, engine: Any, loaded: EngineConfig, plan: rp.ReloadPlan,
                 report: ReloadReport):
        self._engine = engine
        # (channel, None) for a source, (channel, destination) for lanes, that did not start:
        # the next reload starts them again even if their files have not changed.
        self.unfinished: set[tuple[str, str | None]] = set()
        self._new = {c.name: c for c in loaded.channels if c.enabled}
        self._loaded = loaded
        self._plan = plan
        self._report = report

    @defer.inlineCallbacks
    def run(self) -> Any:
        plan = self._plan
        yield defer.DeferredList(
            [self._stop_source(c) for c in plan.channels
             if c.restart_source and c.kind != rp.ADDED]
            + [self._stop_lanes(c.name, d) for c in plan.channels for d in c.stop_destinations])
        if plan.identity_changed:
            self._engine.set_identity(self._loaded.identity)
        for change in plan.channels:
            yield self._swap_plan(change)
        for change in plan.channels:
            self._start_lanes(change)
        yield defer.gatherResults([self._start_source(c) for c in plan.channels
                                   if c.restart_source and c.kind != rp.REMOVED])
        yield self._warn_about_queues()
        self._describe()

    def _stop_source(self, change: rp.ChannelChange) -> defer.Deferred:
        d = self._engine.stop_source(change.name)
        d.addErrback(lambda failure: log.error("stopping the source of channel %s failed: %s",
                                               change.name, failure.getErrorMessage()))
        return d

    def _stop_lanes(self, channel: str, destination: str) -> defer.Deferred:
        d = self._engine.stop_lanes(channel, destination)
        d.addErrback(lambda failure: log.error("stopping the lanes of %s/%s failed: %s",
                                               channel, destination, failure.getErrorMessage()))
        return d

    @defer.inlineCallbacks
    def _swap_plan(self, change: rp.ChannelChange) -> Any:
        if change.kind == rp.REMOVED:
            # What its source accepted before stopping runs under the plan it came in with.
            yield self._engine.decider.settle(change.name)
            self._engine.drop_plan(change.name)
        elif change.swap_plan:
            self._engine.set_plan(self._new[change.name])

    def _start_lanes(self, change: rp.ChannelChange) -> None:
        if not change.start_destinations:
            return
        destinations = {d.name: d for d in self._new[change.name].destinations}
        for name in change.start_destinations:
            try:
                self._engine.start_lanes(change.name, destinations[name],
                                         retry_now=name in change.stop_destinations)
            except (ValueError, OSError) as error:
                self.unfinished.add((change.name, name))
                self._report.errors.append(
                    f"channel {change.name}: destination {name} could not start: {error}")

    def _start_source(self, change: rp.ChannelChange) -> defer.Deferred:
        def failed(failure: Any) -> None:
            self._engine.sources.pop(change.name, None)
            self.unfinished.add((change.name, None))
            self._report.errors.append(f"channel {change.name}: the source could not start: "
                                       f"{failure.getErrorMessage()}")
        return defer.maybeDeferred(self._engine.start_source, self._new[change.name]) \
            .addErrback(failed)

    @defer.inlineCallbacks
    def _warn_about_queues(self) -> Any:
        """Count the deliveries left QUEUED with no lane to send them, and say so."""
        for what, args in self._orphaned_queues():
            count = yield self._engine.store.read(queries.queued_count, *args)
            if count:
                self._report.warnings.append(
                    f"{what}: {count} queued deliveries stay QUEUED in the store; they are "
                    "sent if it comes back")

    def _orphaned_queues(self) -> list[tuple[str, tuple]]:
        found = []
        for change in self._plan.channels:
            if change.kind == rp.REMOVED:
                found.append((f"channel {change.name} removed", (change.name,)))
                continue
            new = {d.name: d for d in self._new[change.name].destinations}
            for name in change.stop_destinations:
                if name not in new:
                    found.append((f"destination {change.name}/{name} removed",
                                  (change.name, name)))
                else:
                    lanes = new[name].ordering.lanes
                    found.append((f"destination {change.name}/{name} now has {lanes} lane(s)",
                                  (change.name, name, lanes)))
        return found

    def _describe(self) -> None:
        report = self._report
        for change in self._plan.channels:
            if (change.name, None) in self.unfinished:
                source = "not started (see the errors)"
            else:
                port = self._engine.source_port(change.name)
                source = "started" if port is None else f"listening on port {port}"
            report.changes.append(f"channel {change.name}: {_change_text(change, source)}")
        if self._plan.identity_changed:
            stepped = sorted(name for name, c in self._new.items() if c.identity is not None)
            report.changes.append("engine.yaml: identity (domains, target, matching) applied; "
                                  f"identity steps rebuilt: {', '.join(stepped) or 'none'}")
        for setting in self._plan.needs_restart:
            report.warnings.append(f"engine.yaml: {setting} changed; not applied, needs a restart")


def _change_text(change: rp.ChannelChange, source: str) -> str:
    """One line saying what the reload did to a channel (``source``: how its source is now,
    if it was started)."""
    if change.kind in (rp.ADDED, rp.REMOVED, rp.UNCHANGED):
        return {rp.ADDED: f"added, source {source}", rp.UNCHANGED: "unchanged",
                rp.REMOVED: "removed (or disabled), source and lanes stopped"}[change.kind]
    parts = ["mappings reloaded"]
    parts.append(f"source restarted, {source}" if change.restart_source else "source kept")
    rebuilt = sorted(set(change.stop_destinations) & set(change.start_destinations))
    for label, names in (("lanes rebuilt", rebuilt),
                         ("destinations added", sorted(set(change.start_destinations)
                                                       - set(rebuilt))),
                         ("destinations removed", sorted(set(change.stop_destinations)
                                                         - set(rebuilt)))):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return "changed: " + "; ".join(parts)
