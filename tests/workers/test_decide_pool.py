"""Tests for engine.workers.decide_pool and decide_child: real worker processes (spawn)
deciding messages of a configuration written to a temp dir, without sockets."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from twisted.internet import defer, reactor
from twisted.trial import unittest

from engine import status as st
from engine.app import worker_plans
from engine.flow.plan import InboundMessage
from engine.workers.decide_pool import (
    MAX_CRASHES, DecisionProcesses, Unavailable, default_processes)
from mappings.message import HL7Message
from tests.e2e import harness as h


def adt(control_id: str) -> str:
    return (f"MSH|^~\\&|HIS|HOSP|ENG|HOSP|20260101||ADT^A01|{control_id}|P|2.5\r"
            f"PID|1||P1^^^HOSP||DOE^JOHN\r")


def write(directory: Path, channels: dict[str, list[dict]]) -> str:
    """engine.yaml (channel e2e routes only) plus one channel per ``channels`` item, whose
    value is its steps; the engine.yaml path."""
    config = h.write_config(directory, "sqlite:///" + str(directory / "store.db"), None,
                            extra_destinations=[{"name": "out", "type": "mllp",
                                                 "host": "127.0.0.1", "port": 9}])
    for name, steps in channels.items():
        channel = {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                   "steps": steps, "destinations": [{"name": "out", "type": "mllp",
                                                     "host": "127.0.0.1", "port": 9}]}
        (directory / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel))
    return config


def pid_in(decision) -> int:
    payload = decision.deliveries[0].payload.decode()
    return int(HL7Message.parse(payload).segment("PID").get(5).removeprefix("PROCESS"))


class DefaultTests(unittest.TestCase):

    def test_default_count_leaves_cores_to_the_engine(self):
        """If the machine has N cores, then half of them (1 to 4) decide."""
        self.assertEqual([default_processes(n) for n in (1, 2, 3, 4, 8, 32)],
                         [1, 1, 1, 2, 4, 4])


class WorkerPlansTests(unittest.TestCase):

    def test_only_slow_plans_without_a_hook_are_built(self):
        """If the configuration has a routing channel and a python: channel, then a worker
        builds only the second (the first is decided on the reactor thread)."""
        directory = Path(tempfile.mkdtemp(prefix="aiguillage-pool-"))
        config = write(directory, {"cpu": [{"python": "tests.workers.cpu_steps:stamp"}]})
        self.assertEqual(sorted(worker_plans(config)), ["cpu"])


class DecisionProcessesTests(unittest.TestCase):

    timeout = 120

    def setUp(self):
        self.directory = Path(tempfile.mkdtemp(prefix="aiguillage-pool-"))
        self.config = write(self.directory, {
            "cpu": [{"python": "tests.workers.cpu_steps:busy_20ms"}],
            "killer": [{"python": "tests.workers.cpu_steps:exit_process"}]})
        self.pool = DecisionProcesses(reactor, 2, self.config, worker_plans)
        self.addCleanup(self.pool.stop)

    def message(self, n: int, control_id: str = "C") -> InboundMessage:
        text = adt(f"{control_id}{n}")
        return InboundMessage(n, text, raw=text.encode(), control_id=f"{control_id}{n}")

    @defer.inlineCallbacks
    def test_a_message_is_decided_in_another_process(self):
        """If a cpu message is decided, then it is TRANSFORMED by its step, which ran in a
        process other than this one."""
        decision = yield self.pool.decide("cpu", self.message(1))
        self.assertEqual(decision.status, st.TRANSFORMED)
        self.assertNotEqual(pid_in(decision), os.getpid())

    @defer.inlineCallbacks
    def test_messages_beyond_the_processes_wait_and_are_all_decided(self):
        """If five messages are given to two processes at once, then each is decided by one
        of at most two processes."""
        decisions = yield defer.gatherResults(
            [self.pool.decide("cpu", self.message(n)) for n in range(5)])
        self.assertEqual([d.status for d in decisions], [st.TRANSFORMED] * 5)
        self.assertLessEqual(len({pid_in(d) for d in decisions}), 2)

    @defer.inlineCallbacks
    def test_a_step_that_kills_its_process_is_an_error_after_retries(self):
        """If a step ends its process, then the message is tried in a new process, and after
        MAX_CRASHES ends it is an ERROR saying so; the pool still decides the next one."""
        decision = yield self.pool.decide("killer", self.message(1, "K"))
        self.assertEqual(decision.status, st.ERROR)
        self.assertIn(f"ended the worker process {MAX_CRASHES} times (exit code 3)",
                      decision.error)
        self.assertEqual(self.pool.crashes, MAX_CRASHES)
        after = yield self.pool.decide("cpu", self.message(2))
        self.assertEqual(after.status, st.TRANSFORMED)

    @defer.inlineCallbacks
    def test_a_channel_without_a_plan_there_is_unavailable(self):
        """If a channel is not in the worker's configuration, then its decision fails with
        Unavailable naming it (the decider then decides it in a thread)."""
        with self.assertRaises(Unavailable) as raised:
            yield self.pool.decide("nowhere", self.message(1))
        self.assertIn("'nowhere'", str(raised.exception))

    @defer.inlineCallbacks
    def test_refresh_replaces_the_processes(self):
        """If the pool is refreshed (a reload), then the next message is decided by a new
        process."""
        first = yield self.pool.decide("cpu", self.message(1))
        self.pool.refresh()
        second = yield self.pool.decide("cpu", self.message(2))
        self.assertNotEqual(pid_in(first), pid_in(second))

    @defer.inlineCallbacks
    def test_warm_starts_the_processes_and_stop_ends_them(self):
        """If the pool is warmed, then each child's process runs before any message; if it
        is stopped at once, then the stop waits for them to start and ends them all."""
        self.pool.warm()
        yield h.wait_until(lambda: all(c.process is not None for c in self.pool._all), 60,
                           "both processes start")
        processes = [c.process for c in self.pool._all]
        decision = yield self.pool.decide("cpu", self.message(1))
        self.assertIn(pid_in(decision), [p.pid for p in processes])
        yield self.pool.stop()
        self.assertEqual([p.is_alive() for p in processes], [False, False])

    @defer.inlineCallbacks
    def test_stop_right_after_warm_leaves_no_process(self):
        self.pool.warm()
        yield self.pool.stop()
        self.assertEqual([c.process for c in self.pool._all], [None, None])
