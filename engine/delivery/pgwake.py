"""
Waking the lanes of the other nodes that share a PostgreSQL store.

A node's own processes wake each other over Unix datagram sockets
(:mod:`engine.delivery.wakeup`); a lane held on another machine would find the work at its
poll, up to a second later. So on PostgreSQL a process that queued deliveries also sends
their lanes' keys on the channel :data:`CHANNEL` (``NOTIFY``), and every process that runs
lanes listens on it and wakes those it holds; a node ignores its own notifications (its
datagrams came first). A node alone on its database notifies nobody: the sender looks in
the ``nodes`` table every few seconds for another node's live process that runs lanes.

Both run in threads of their own on connections of their own, never on the reactor: the
listener blocks in ``notifies()``; the sender coalesces the keys queued while its last
``NOTIFY`` was on its way into the next one, so a busy node sends one at a time, not one per
commit. Like the datagrams, a notification is a hint: one lost (the store unreachable, a
listener reconnecting) costs that poll's second, never a message; failures are logged once
until the connection works again.

test-case-name: tests.delivery.test_pgwake
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Iterable

from twisted.internet import threads

from engine.delivery.wakeup import KeyTuple, lane_keys

log = logging.getLogger(__name__)

CHANNEL = "aiguillage_lanes"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
RECONNECT_AFTER = (0.5, 1.0, 2.0, 5.0)  # seconds, then 5 s again while it keeps failing
LISTEN_TIMEOUT = 1.0  # how long the listener waits before looking whether it should stop
CHECK_NODES_EVERY = 5.0  # seconds between two looks for other nodes worth notifying


def encode(node: str, keys: Iterable[KeyTuple]) -> str:
    """The payload: the sending node and its keys; the keys left out (every lane of the
    receiver woken) when they would not fit."""
    payload = json.dumps({"node": node, "keys": sorted(keys)}, separators=(",", ":"))
    if len(payload.encode()) <= MAX_PAYLOAD:
        return payload
    return json.dumps({"node": node, "keys": None}, separators=(",", ":"))


def decode(payload: str) -> tuple[str, list[KeyTuple] | None]:
    """(node, keys or None for every lane); ValueError for anything else."""
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise ValueError("not a lane notification")
    keys = data.get("keys")
    return data["node"], None if keys is None else lane_keys(keys)


class PostgresWake:
    """One process's notifications: ``tell`` (any thread) and, once ``listen`` ran, wakes
    of this process's lanes through ``wake_lanes`` on the reactor thread.

    ``connect``: a new DBAPI (psycopg) connection, blocking; called in the threads only.
    ``stale_after``: seconds after which a process's heartbeat no longer counts it as live
    (engine.nodes.STALE_AFTER).
    """

    def __init__(self, connect: Callable[[], Any], reactor: Any, node: str, *,
                 stale_after: float):
        self._connect = connect
        self._stale_after = stale_after
        self._reactor = reactor
        self.node = node
        self._pending: set[KeyTuple] = set()
        self._lock = threading.Lock()
        self._wanted = threading.Event()  # keys are pending, or it is time to stop
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sender: threading.Thread | None = None
        self.sent = 0
        self.received = 0

    # -- sending ------------------------------------------------------------------------

    def tell(self, keys: Iterable[KeyTuple]) -> None:
        """Wake ``keys`` on the other nodes: queued for the sender thread (started at the
        first call)."""
        with self._lock:
            self._pending.update(keys)
        if self._sender is None and not self._stopping.is_set():
            self._sender = self._start("aiguillage-notify", self._send_loop)
        self._wanted.set()

    def _send_loop(self) -> None:
        connection = None
        failures = 0
        checked_at, others = float("-inf"), True
        while not self._stopping.is_set():
            self._wanted.wait()
            with self._lock:
                keys, self._pending = self._pending, set()
                self._wanted.clear()
            if not keys:
                continue
            try:
                if connection is None:
                    connection = self._connect()
                    connection.autocommit = True
                    checked_at = float("-inf")
                if time.monotonic() - checked_at >= CHECK_NODES_EVERY:
                    others = _other_nodes_run_lanes(connection, self.node, self._stale_after)
                    checked_at = time.monotonic()
                if others:
                    connection.execute("SELECT pg_notify(%s, %s)",
                                       (CHANNEL, encode(self.node, keys)))
                    self.sent += 1
                failures = 0
            except Exception as error:
                connection = _closed(connection)
                if failures == 0:
                    log.warning("could not wake the other nodes' lanes (they will poll): %s",
                                error)
                failures += 1
                self._stopping.wait(_backoff(failures))
        _closed(connection)

    # -- listening ----------------------------------------------------------------------

    def listen(self, wake_lanes: Callable[[list[KeyTuple] | None], None]) -> None:
        """Wake this process's lanes when another node queues work for them."""
        self._start("aiguillage-listen", self._listen_loop, wake_lanes)

    def _listen_loop(self, wake_lanes: Callable[[list[KeyTuple] | None], None]) -> None:
        failures = 0
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._connect()
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
                failures = 0
                while not self._stopping.is_set():
                    for notification in connection.notifies(timeout=LISTEN_TIMEOUT):
                        self._received(notification.payload, wake_lanes)
            except Exception as error:
                if failures == 0 and not self._stopping.is_set():
                    log.warning("not listening for the other nodes' work (lanes will poll): "
                                "%s", error)
                failures += 1
                self._stopping.wait(_backoff(failures))
            finally:
                _closed(connection)

    def _received(self, payload: str, wake_lanes: Callable) -> None:
        try:
            node, keys = decode(payload)
        except ValueError as error:
            log.warning("ignored a lane notification: %s", error)
            return
        if node == self.node:
            return  # this node's processes woke each other already
        self.received += 1
        self._reactor.callFromThread(wake_lanes, keys)

    # -- threads ------------------------------------------------------------------------

    def _start(self, name: str, target: Callable, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def stop(self) -> Any:
        """Let both threads end (within :data:`LISTEN_TIMEOUT`); Deferred firing when they
        have (waited for in a thread, not on the reactor)."""
        self._stopping.set()
        self._wanted.set()
        started = list(self._threads)
        return threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                                         lambda: [t.join(LISTEN_TIMEOUT * 5) for t in started])


def _other_nodes_run_lanes(connection: Any, node: str, stale_after: float) -> bool:
    """Whether a process of another node that runs lanes has beaten its heartbeat lately
    (engine.nodes); True when the table cannot tell (notifying for nothing costs little)."""
    try:
        row = connection.execute(
            "SELECT 1 FROM nodes WHERE name <> %s AND role LIKE %s AND heartbeat_at > %s "
            "LIMIT 1", (node, "%delivery%", time.time() - stale_after)).fetchone()
    except Exception as error:
        log.debug("could not read the nodes table: %s", error)
        return True
    return row is not None


def _backoff(failures: int) -> float:
    return RECONNECT_AFTER[min(failures, len(RECONNECT_AFTER)) - 1]


def _closed(connection: Any) -> None:
    if connection is not None:
        try:
            connection.close()
        except Exception:
            pass
    return None
