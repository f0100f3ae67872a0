"""
The admin listener: health, status as JSON, Prometheus metrics, and reload over HTTP.

Enabled by the ``admin:`` section of engine.yaml. Counts come from the store (read in a
database thread, so a scrape never blocks the reactor) and the node's in-memory counters
(writer batches, lanes). The CLI's ``status`` reads the store directly and works without it;
this is what monitoring scrapes. Every request passes :class:`engine.serve.adminauth.AdminGuard`
first (Host, browsers, the bearer token on state changes).

test-case-name: tests.serve.test_admin
"""
from __future__ import annotations

import json
from typing import Any, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource, server

from engine.serve.adminauth import AdminGuard
from engine.store import queries

JSON = b"application/json"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"


class _Snapshot:
    """A Prometheus collector over one snapshot of the store's counts and the node's stats."""

    def __init__(self, report: dict, stats: dict):
        self._report = report
        self._stats = stats

    def collect(self) -> Any:
        messages = CounterMetricFamily("aiguillage_messages", "messages received, by outcome",
                                       labels=["channel", "outcome"])
        deliveries = CounterMetricFamily("aiguillage_deliveries", "deliveries, by status",
                                         labels=["channel", "destination", "status"])
        queued = GaugeMetricFamily("aiguillage_queue_depth", "deliveries waiting to be sent",
                                   labels=["channel", "destination"])
        pending = GaugeMetricFamily("aiguillage_messages_pending",
                                    "messages committed, not yet processed", labels=["channel"])
        for channel, entry in self._report.items():
            for outcome in ("received", "filtered", "errored", "duplicates"):
                messages.add_metric([channel, outcome], entry[outcome])
            pending.add_metric([channel], entry["pending"])
            for name, dest in entry["destinations"].items():
                for status in ("sent", "errored", "queued"):
                    deliveries.add_metric([channel, name, status], dest[status])
                queued.add_metric([channel, name], dest["queued"])
        yield from (messages, pending, deliveries, queued)
        yield from self._node_metrics()

    def _node_metrics(self) -> Any:
        stats = self._stats
        for key, help_text in (("writer_batches", "group commits since start"),
                               ("writer_items", "writes group-committed since start"),
                               ("writer_busy_seconds", "time the writer spent committing")):
            yield CounterMetricFamily(f"aiguillage_{key}", help_text, value=stats[key])
        sent = CounterMetricFamily("aiguillage_lane_sent", "deliveries sent by this node",
                                   labels=["lane"])
        parked = CounterMetricFamily("aiguillage_lane_parked", "deliveries parked in ERROR",
                                     labels=["lane"])
        for lane, counters in stats["lanes"].items():
            sent.add_metric([lane], counters["sent"])
            parked.add_metric([lane], counters["parked"])
        yield from (sent, parked)
        yield from self._source_metrics()

    def _source_metrics(self) -> Any:
        """What the sources refused: connections by reason, unreadable frames summarised."""
        refused = CounterMetricFamily("aiguillage_connections_refused",
                                      "connections closed at accept, by reason",
                                      labels=["channel", "reason"])
        summarised = CounterMetricFamily(
            "aiguillage_unreadable_summarised",
            "unreadable frames NAKed and counted in a summary record, not stored one by one",
            labels=["channel"])
        for channel, counters in self._stats.get("sources", {}).items():
            for reason, count in counters.get("connections_refused", {}).items():
                refused.add_metric([channel, reason], count)
            if "unreadable_summarised" in counters:
                summarised.add_metric([channel], counters["unreadable_summarised"])
        yield from (refused, summarised)


class _Read(resource.Resource):
    """A page rendered from a store read (in a thread) and the node's stats."""

    isLeaf = True

    def __init__(self, store: Any, stats: Callable[[], dict],
                 render_body: Callable[[dict, dict], tuple[bytes, bytes]]):
        super().__init__()
        self._store = store
        self._stats = stats
        self._render_body = render_body

    def render_GET(self, request: Any) -> Any:
        d = self._store.read(queries.status_counts)

        def done(report: dict) -> None:
            content_type, body = self._render_body(report, self._stats())
            request.setHeader(b"content-type", content_type)
            request.write(body)
            request.finish()

        def failed(failure: Any) -> None:
            request.setResponseCode(503)
            request.setHeader(b"content-type", JSON)
            request.write(json.dumps({"error": failure.getErrorMessage()}).encode())
            request.finish()

        d.addCallbacks(done, failed)
        return server.NOT_DONE_YET


def _status_body(report: dict, stats: dict) -> tuple[bytes, bytes]:
    return JSON, json.dumps({"channels": report, "node": stats}, sort_keys=True).encode()


def _metrics_body(report: dict, stats: dict) -> tuple[bytes, bytes]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(report, stats))
    return PROMETHEUS, generate_latest(registry)


class _Health(resource.Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", JSON)
        return b'{"status": "ok"}'


class _Reload(resource.Resource):
    """POST /reload: reload the channels; the answer is the reload's report as JSON.

    Only POST: a reload changes the running engine, and a crawler or a browser's prefetch
    must not trigger one. It answers 200 whatever the outcome (``outcome`` in the body says
    reloaded, refused or failed): the request itself was carried out.
    """

    isLeaf = True

    def __init__(self, reload: Callable[[], Any]):
        super().__init__()
        self._reload = reload

    def render_POST(self, request: Any) -> Any:
        gone: list[Any] = []
        request.notifyFinish().addErrback(gone.append)  # the client hung up: the reload
                                                        # still runs, and is logged
        def done(report: Any) -> None:
            if gone:
                return
            request.setHeader(b"content-type", JSON)
            request.write(json.dumps(report.as_dict(), indent=2).encode())
            request.finish()

        self._reload().addCallback(done)
        return server.NOT_DONE_YET


class _GuardedSite(server.Site):
    """A site whose every request is checked by an :class:`AdminGuard` before routing."""

    def __init__(self, root: resource.Resource, guard: AdminGuard):
        super().__init__(root)
        self._guard = guard

    def getResourceFor(self, request: Any) -> Any:
        refusal = self._guard.refusal(
            request.method, _header(request, b"host"), _header(request, b"origin"),
            _header(request, b"content-type"), _header(request, b"authorization"))
        if refusal is None:
            return super().getResourceFor(request)
        if refusal.code == 401:
            request.setHeader(b"www-authenticate", b'Bearer realm="aiguillage"')
        return resource.ErrorPage(refusal.code, "refused", refusal.reason)


def _header(request: Any, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def admin_site(store: Any, stats: Callable[[], dict], guard: AdminGuard,
               reload: Callable[[], Any] | None = None) -> server.Site:
    """The admin HTTP site: /health, /status (JSON), /metrics (Prometheus), and with
    ``reload`` (Deferred[engine.reload.reloader.ReloadReport]) POST /reload; every request
    checked by ``guard``."""
    root = resource.Resource()
    root.putChild(b"health", _Health())
    root.putChild(b"status", _Read(store, stats, _status_body))
    root.putChild(b"metrics", _Read(store, stats, _metrics_body))
    if reload is not None:
        root.putChild(b"reload", _Reload(reload))
    site = _GuardedSite(root, guard)
    site.noisy = False
    return site
