"""Tests for engine.delivery.wakeup: the datagram's format (pure), the wake folder's checks
(real folders), and processes' sockets waking each other (real Unix datagram sockets on the
reactor)."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from engine.delivery import wakeup
from tests.e2e.harness import wait_until

NAMES = st.text(min_size=1, max_size=20)
KEYS = st.lists(st.tuples(NAMES, NAMES, st.integers(0, 255)), max_size=10)  # they fit


# -- the datagram ----------------------------------------------------------------------

@given(KEYS)
def test_keys_come_back_as_they_were_sent(keys):
    assert sorted(wakeup.decode(wakeup.encode(keys))) == sorted(keys)


def test_too_many_keys_wake_every_lane():
    keys = [("channel", f"destination-{n}", n % 8) for n in range(1000)]
    assert wakeup.encode(keys) == wakeup.EVERY_LANE
    assert wakeup.decode(wakeup.EVERY_LANE) is None


@pytest.mark.parametrize("data", [b"", b"{", b'{"a": 1}', b"[1]", b'[["c", "d"]]',
                                  b'[["c", "d", "0"]]', b'[["c", 1, 0]]', b'[["c", "d", true]]',
                                  b'[["c", "d", 1.5]]', b"\xff\xfe"])
def test_anything_else_is_refused(data):
    with pytest.raises(ValueError):
        wakeup.decode(data)


# -- the folder ------------------------------------------------------------------------

@pytest.fixture
def short_path():
    """A folder of a short path (pytest's tmp_path is too long for a Unix socket's)."""
    base = tempfile.mkdtemp(prefix="wake-")
    yield Path(base)
    shutil.rmtree(base, True)


def test_each_node_and_configuration_has_a_folder_of_its_own(tmp_path):
    first = wakeup.directory_for("config/engine.yaml", "n1", base=str(tmp_path))
    assert first == wakeup.directory_for(os.path.abspath("config/engine.yaml"), "n1",
                                         base=str(tmp_path))
    assert first != wakeup.directory_for("config/engine.yaml", "n2", base=str(tmp_path))
    assert first != wakeup.directory_for("other/engine.yaml", "n1", base=str(tmp_path))
    assert first.parent == tmp_path / f"aiguillage-{os.getuid()}"


def test_the_folder_is_created_private(short_path):
    folder = wakeup.directory_for("engine.yaml", "n1", base=str(short_path))
    assert wakeup.prepare(folder) is None
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o700
    assert wakeup.prepare(folder) is None  # and used again as it is


def test_a_folder_others_can_write_to_is_not_used(short_path):
    folder = wakeup.directory_for("engine.yaml", "n1", base=str(short_path))
    folder.parent.mkdir(mode=0o700)
    folder.mkdir()
    folder.chmod(0o777)
    assert wakeup.prepare(folder) == f"{folder}: others may write or read it (mode 777)"
    folder.chmod(0o700)
    folder.parent.chmod(0o755)
    assert wakeup.prepare(folder) == f"{folder.parent}: others may write or read it (mode 755)"


def test_a_file_in_the_way_is_not_used(short_path):
    folder = short_path / "wake"
    folder.write_text("")
    assert wakeup.prepare(folder) == f"{folder}: not a folder"


def test_a_symbolic_link_is_not_followed(short_path):
    (short_path / "elsewhere").mkdir(mode=0o700)
    (short_path / "wake").symlink_to(short_path / "elsewhere")
    assert wakeup.prepare(short_path / "wake") == f"{short_path / 'wake'}: not a folder"


def test_a_path_too_long_for_a_socket_is_not_used(tmp_path):
    folder = tmp_path / ("x" * 120)
    assert "too long a path for a Unix socket" in wakeup.prepare(folder)
    assert not folder.exists()


# -- processes waking each other -------------------------------------------------------

class WakeupTests(unittest.TestCase):
    """Several NodeWakeups in one folder stand for the processes of a node."""

    timeout = 30

    def setUp(self):
        base = tempfile.mkdtemp(prefix="wake-")  # short: a socket's path has a limit
        self.addCleanup(shutil.rmtree, base, True)
        self.folder = wakeup.directory_for("engine.yaml", "n1", base=base)
        self.woken: dict[str, list] = {}

    def process(self, name: str) -> wakeup.NodeWakeup:
        node = wakeup.NodeWakeup(self.folder, reactor)
        self.woken[name] = []
        node.start(self.woken[name].append)
        self.addCleanup(node.stop)
        return node

    @defer.inlineCallbacks
    def test_the_other_processes_are_woken_and_not_the_sender(self):
        intake, delivery, other = (self.process(n) for n in ("intake", "delivery", "other"))
        intake.tell({("adt", "archive", 1), ("adt", "archive", 0)})
        yield wait_until(lambda: self.woken["delivery"] and self.woken["other"], 4,
                         "both other processes are woken")
        self.assertEqual(self.woken["delivery"], [[("adt", "archive", 0), ("adt", "archive", 1)]])
        self.assertEqual(self.woken["other"], self.woken["delivery"])
        self.assertEqual(self.woken["intake"], [])

    def sender(self) -> tuple[wakeup.WakeSender, task.Clock]:
        """A sender of no socket of its own, listing the folder on a clock of the test's."""
        clock = task.Clock()
        sender = wakeup.WakeSender(self.folder, None, clock)
        self.addCleanup(sender.close)
        return sender, clock

    @defer.inlineCallbacks
    def test_a_process_started_later_is_found_at_the_next_listing(self):
        self.process("early")
        sender, clock = self.sender()
        sender.tell([("adt", "archive", 0)])
        self.process("late")
        sender.tell([("adt", "archive", 1)])
        self.assertEqual(sender.sent, 2)  # the folder was listed less than a second ago
        clock.advance(wakeup.REFRESH_EVERY)
        sender.tell([("adt", "archive", 2)])
        yield wait_until(lambda: self.woken["late"] and len(self.woken["early"]) == 3, 4,
                         "the late process is woken")
        self.assertEqual(self.woken["late"], [[("adt", "archive", 2)]])

    @defer.inlineCallbacks
    def test_a_socket_left_by_a_dead_process_is_removed(self):
        self.process("delivery")
        dead = self.folder / f"999999-deadbeef{wakeup.SUFFIX}"
        left = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        left.bind(os.fspath(dead))
        left.close()  # the file stays, nobody reads it
        sender, _ = self.sender()
        sender.tell([("adt", "archive", 0)])
        self.assertFalse(dead.exists())
        self.assertEqual(sender.sent, 1)
        yield wait_until(lambda: self.woken["delivery"], 4, "the delivery process is woken")

    @defer.inlineCallbacks
    def test_a_stranger_datagram_is_ignored(self):
        self.process("delivery")
        (path,) = self.folder.glob(f"*{wakeup.SUFFIX}")
        stranger = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(stranger.close)
        stranger.sendto(b"rm -rf /", os.fspath(path))
        stranger.sendto(wakeup.EVERY_LANE, os.fspath(path))
        yield wait_until(lambda: self.woken["delivery"], 4, "the delivery process is woken")
        self.assertEqual(self.woken["delivery"], [None])

    @defer.inlineCallbacks
    def test_the_last_process_to_stop_removes_the_folder(self):
        first, second = self.process("a"), self.process("b")
        yield first.stop()
        self.assertEqual(len(list(self.folder.glob(f"*{wakeup.SUFFIX}"))), 1)
        yield second.stop()
        self.assertFalse(self.folder.exists())

    @defer.inlineCallbacks
    def test_a_paced_sender_sends_a_lanes_first_wake_then_one_an_interval(self):
        """If a process commits for the same lane three times within its receivers' interval,
        then one datagram goes at once and one more at the interval's end, not three."""
        delivery = self.process("delivery")
        intake = wakeup.NodeWakeup(self.folder, reactor, every=0.3)
        intake.start(lambda keys: None)
        self.addCleanup(intake.stop)
        for _ in range(3):
            intake.tell({("adt", "archive", 0)})
        self.assertEqual(intake.sender.sent, 1)
        yield wait_until(lambda: len(self.woken["delivery"]) == 2, 4,
                         "the held wake goes at the interval's end")
        self.assertEqual(intake.sender.sent, 2)
        self.assertEqual(self.woken["delivery"], [[("adt", "archive", 0)]] * 2)
        self.assertIsNotNone(delivery.sender)

    def test_an_unusable_folder_leaves_the_lanes_to_their_poll(self):
        self.folder.parent.mkdir(mode=0o700)
        self.folder.mkdir(mode=0o700)
        self.folder.chmod(0o777)
        node = wakeup.NodeWakeup(self.folder, reactor)
        with self.assertLogs("engine.delivery.wakeup", "WARNING") as logs:
            node.start(lambda keys: None)
        self.assertIn("at their poll, not at once", logs.output[0])
        node.tell([("adt", "archive", 0)])  # nothing to send with, nothing raised
        self.assertIsNone(node.stop())


# -- the throttle ----------------------------------------------------------------------

def throttle(every: float = 0.05):
    clock, woken = task.Clock(), []
    return wakeup.WakeThrottle(clock, woken.append, every), clock, woken


def test_a_lane_is_woken_at_once_then_once_an_interval():
    wake, clock, woken = throttle()
    wake([("adt", "archive", 0)])
    assert woken == [[("adt", "archive", 0)]]
    clock.advance(0.01)
    wake([("adt", "archive", 0)])
    wake([("adt", "archive", 0)])  # already due at the end of the interval
    assert len(woken) == 1
    clock.advance(0.039)
    assert len(woken) == 1
    clock.advance(0.001)
    assert woken[1:] == [[("adt", "archive", 0)]]
    clock.advance(1.0)  # quiet for a while: the next one goes at once again
    wake([("adt", "archive", 0)])
    assert len(woken) == 3


def test_each_lane_has_its_own_interval():
    wake, clock, woken = throttle()
    wake([("adt", "archive", 0)])
    clock.advance(0.01)
    wake([("adt", "archive", 0), ("adt", "archive", 1)])
    assert woken == [[("adt", "archive", 0)], [("adt", "archive", 1)]]
    clock.advance(0.04)
    assert woken[2:] == [[("adt", "archive", 0)]]


def test_every_lane_goes_at_once_and_pending_wakes_are_dropped_at_stop():
    wake, clock, woken = throttle()
    wake([("adt", "archive", 0)])
    wake([("adt", "archive", 0)])
    wake(None)
    assert woken == [[("adt", "archive", 0)], None]
    wake.cancel()
    clock.advance(1.0)
    assert len(woken) == 2
