"""
Waking the lanes of the node's other processes when work is queued for them.

Deliveries are claimed from the store, so a lane finds its work without being told: it
reads its queue at each poll. A poll every second, though, is up to a second of latency for
every message whose lane runs in another process than the one that received it, which is the
default (``--workers``: delivery in processes of its own). So every process of a node binds
a Unix datagram socket in one folder of the node's own, and a process that committed
deliveries sends the lanes' keys to every other socket there; the process holding those
lanes reads their queues at once. A wake is a hint and nothing more: one lost (a full socket
buffer, a process restarting) costs that poll's latency, never a message.

The folder is derived from the configuration file's path and the node's name, so that the
processes of one node find each other (those the supervisor starts, and one started by hand
with ``--role``) and two engines on one machine do not. It is created with mode 0700 in the
user's runtime folder (``$XDG_RUNTIME_DIR``, else the temporary folder) and used only if it
is this user's and nobody else's: a folder anyone else could write to would let them wake
lanes, or hide them from each other. If it cannot be used, lanes keep their poll and a
warning says why. Nodes on other machines are not woken (their lanes poll).

test-case-name: tests.delivery.test_wakeup
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from twisted.internet import protocol

log = logging.getLogger(__name__)

KeyTuple = tuple[str, str, int]
SUFFIX = ".wake"
MAX_DATAGRAM = 8192  # keys beyond this wake every lane of the receiver instead
EVERY_LANE = b"*"
REFRESH_EVERY = 1.0  # seconds between two listings of the folder (new processes)
SUN_PATH_MAX = 107  # a Unix socket's path, in bytes, on Linux


def directory_for(config_path: str, node: str, base: str | None = None) -> Path:
    """The wake folder of the node ``node`` run from ``config_path``."""
    root = base or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    digest = hashlib.sha256(f"{os.path.abspath(config_path)}\0{node}".encode()).hexdigest()
    return Path(root) / f"aiguillage-{os.getuid()}" / digest[:16]


def prepare(directory: Path) -> str | None:
    """Create ``directory`` (and its parent) with mode 0700 if missing; None if it can be
    used, else why not (not ours, open to others, not a folder, path too long)."""
    if len(os.fsencode(directory)) + 32 > SUN_PATH_MAX:
        return f"{directory}: too long a path for a Unix socket"
    for folder in (directory.parent, directory):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as error:
            return f"{folder}: {error.strerror}"
        try:
            status = os.lstat(folder)
        except OSError as error:
            return f"{folder}: {error.strerror}"
        if not stat.S_ISDIR(status.st_mode):
            return f"{folder}: not a folder"
        if status.st_uid != os.getuid():
            return f"{folder}: owned by another user"
        if status.st_mode & 0o077:
            return f"{folder}: others may write or read it (mode {status.st_mode & 0o777:o})"
    return None


def encode(keys: Iterable[KeyTuple]) -> bytes:
    """One datagram naming ``keys``; :data:`EVERY_LANE` when they would not fit."""
    data = json.dumps(sorted(keys), separators=(",", ":")).encode()
    return data if len(data) <= MAX_DATAGRAM else EVERY_LANE


def decode(data: bytes) -> list[KeyTuple] | None:
    """The keys a datagram names; None for :data:`EVERY_LANE`. Anything else that is not a
    list of [channel, destination, lane] raises ValueError."""
    if data == EVERY_LANE:
        return None
    return lane_keys(json.loads(data))


def lane_keys(value: Any) -> list[KeyTuple]:
    """``value`` (decoded JSON) as lane keys: a list of [channel, destination, lane]; else
    ValueError."""
    if not isinstance(value, list):
        raise ValueError("not a list of lane keys")
    keys = []
    for key in value:
        if not (isinstance(key, list) and len(key) == 3 and isinstance(key[0], str)
                and isinstance(key[1], str) and type(key[2]) is int):
            raise ValueError(f"not a lane key: {key!r}")
        keys.append((key[0], key[1], key[2]))
    return keys


class WakeReceiver(protocol.DatagramProtocol):
    """The datagrams sent to this process: each wakes the lanes it names (every lane for
    :data:`EVERY_LANE`) through ``wake(keys or None)``."""

    def __init__(self, wake: Callable[[list[KeyTuple] | None], None]):
        self._wake = wake
        self.received = 0

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            keys = decode(data)
        except ValueError as error:  # json's errors are ValueErrors too
            log.warning("ignored a wake datagram: %s", error)
            return
        self.received += 1
        self._wake(keys)


class WakeSender:
    """Sends lane keys to every other socket of the node's wake folder.

    Runs on the reactor thread: the socket is non-blocking and a send to a local datagram
    socket does not wait. The folder is listed at most every :data:`REFRESH_EVERY` seconds;
    a socket whose process is gone is forgotten at once. A receiver whose buffer is full is
    skipped: it has wakes waiting already.
    """

    def __init__(self, directory: Path, own: Path | None, clock: Any):
        self._directory = directory
        self._own = own
        self._clock = clock
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._peers: list[str] = []
        self._listed_at = float("-inf")
        self.sent = 0

    def tell(self, keys: Iterable[KeyTuple]) -> None:
        """Wake the lanes ``keys`` in the node's other processes."""
        now = self._clock.seconds()
        if now - self._listed_at >= REFRESH_EVERY:
            self._peers, self._listed_at = self._list(), now
        if not self._peers:
            return
        data = encode(keys)
        for peer in list(self._peers):
            try:
                self._socket.sendto(data, peer)
                self.sent += 1
            except BlockingIOError:
                pass  # its buffer is full of wakes it has not read yet
            except OSError as error:
                if error.errno == errno.ECONNREFUSED:  # left by a process that died
                    remove_quietly(peer)
                elif error.errno != errno.ENOENT:
                    log.warning("waking the lanes of %s failed: %s", peer, error)
                self._peers.remove(peer)  # gone; the next listing finds its successor

    def close(self) -> None:
        self._socket.close()

    def _list(self) -> list[str]:
        try:
            names = os.listdir(self._directory)
        except OSError:
            return []
        own = os.fspath(self._own) if self._own is not None else None
        return [path for path in (os.path.join(self._directory, name) for name in names
                                  if name.endswith(SUFFIX)) if path != own]


def socket_path(directory: Path) -> Path:
    """A socket of this process in the wake folder: its pid (for the operator who looks) and
    a random part (two engines in one process, as in the tests, do not share one)."""
    return directory / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"


def remove_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class NodeWakeup:
    """One process's part: its socket in the node's wake folder, waking its own lanes
    through ``wake_lanes`` (keys, or None for all), and its sender to the others.

    ``every``: the receivers pass a lane's wakes on at most once in that many seconds
    (:class:`WakeThrottle`), so the sender holds them to the same pace: a lane's first wake
    goes at once, the others of its interval as one datagram at the interval's end. A busy
    intake commits hundreds of times a second; without this, each commit cost a datagram
    sent, read and decoded, and a wake-up of the receiving process, for a wake it dropped.

    Does nothing but log a warning when the folder cannot be used (see :func:`prepare`) or
    the platform has no Unix datagram sockets: the lanes then find their work at their poll.
    """

    def __init__(self, directory: Path, reactor: Any, every: float = 0.0):
        self.directory = directory
        self._reactor = reactor
        self._every = every
        self._paced: WakeThrottle | None = None
        self._port: Any = None
        self._path: Path | None = None
        self.receiver: WakeReceiver | None = None
        self.sender: WakeSender | None = None

    def start(self, wake_lanes: Callable[[list[KeyTuple] | None], None]) -> None:
        """Bind this process's socket and get ready to tell the others."""
        problem = prepare(self.directory) if hasattr(socket, "AF_UNIX") else "no Unix sockets"
        if problem is not None:
            log.warning("lanes in other processes will find new work at their poll, not at "
                        "once: %s", problem)
            return
        path = socket_path(self.directory)
        self.receiver = WakeReceiver(wake_lanes)
        try:
            self._port = self._reactor.listenUNIXDatagram(os.fspath(path), self.receiver,
                                                          maxPacketSize=MAX_DATAGRAM + 1)
        except Exception as error:  # CannotListenError and the like: lanes still poll
            log.warning("lanes of this process will find new work at their poll: cannot "
                        "bind %s: %s", path, error)
            self.receiver = None
            return
        self._path = path
        self.sender = WakeSender(self.directory, path, self._reactor)
        if self._every > 0:
            self._paced = WakeThrottle(self._reactor, self._send, self._every)

    def tell(self, keys: Iterable[KeyTuple]) -> None:
        """Work was queued for ``keys``: wake them wherever they run on this node."""
        if self._paced is not None:
            self._paced(list(keys))
        elif self.sender is not None:
            self.sender.tell(keys)

    def _send(self, keys: list[KeyTuple] | None) -> None:
        if self.sender is not None and keys is not None:
            self.sender.tell(keys)

    def stop(self) -> Any:
        """Close the socket and remove it; Deferred or None."""
        if self._paced is not None:
            self._paced.cancel()
            self._paced = None
        if self.sender is not None:
            self.sender.close()
            self.sender = None
        port, self._port = self._port, None
        stopped = port.stopListening() if port is not None else None
        if self._path is not None:
            remove_quietly(self._path)
            self._path = None
            try:
                os.rmdir(self.directory)  # the last process of the node leaves nothing
            except OSError:
                pass  # other processes' sockets are still there
        return stopped


class WakeThrottle:
    """Passes other processes' wakes on to ``wake_lanes``, each lane at most once every
    ``every`` seconds: the first at once, a later one when the interval has run out.

    A lane woken after each commit of a busy intake (hundreds a second) would read its queue
    and send a handful of deliveries at a time, each handful paying a read, a flush of its
    files and a commit of its outcomes; a few milliseconds between reads let the work gather
    into batches that pay those once, while a message that arrives alone is still read at
    once. This process's own commits wake its lanes directly, not through here
    (:meth:`engine.app.Engine.work_queued`).
    """

    def __init__(self, clock: Any, wake_lanes: Callable[[list[KeyTuple] | None], None],
                 every: float):
        self._clock = clock
        self._wake_lanes = wake_lanes
        self._every = every
        self._last: dict[KeyTuple, float] = {}
        self._later: dict[KeyTuple, Any] = {}  # lane -> its pending call

    def __call__(self, keys: list[KeyTuple] | None) -> None:
        if keys is None:
            self._wake_lanes(None)
            return
        now = self._clock.seconds()
        due = []
        for key in keys:
            if key in self._later:
                continue  # already due at the end of its interval
            wait = self._last.get(key, float("-inf")) + self._every - now
            if wait <= 0:
                self._last[key] = now
                due.append(key)
            else:
                self._later[key] = self._clock.callLater(wait, self._fire, key)
        if due:
            self._wake_lanes(due)

    def _fire(self, key: KeyTuple) -> None:
        del self._later[key]
        self._last[key] = self._clock.seconds()
        self._wake_lanes([key])

    def cancel(self) -> None:
        """Drop the wakes still to come (the process stops)."""
        for call in self._later.values():
            if call.active():
                call.cancel()
        self._later.clear()
