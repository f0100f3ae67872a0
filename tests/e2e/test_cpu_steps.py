"""
CPU-bound ``python:`` steps decided in worker processes, end to end, on loopback.

Channel ``cpu`` computes for 20 ms per message (tests/workers/cpu_steps.py) and writes the id
of the process that ran it into PID-5; channel ``e2e`` only routes. Both are driven at once:
every message is answered, the cpu messages are decided in another process and delivered
in the order they came. A step that ends its process (``os._exit``) leaves its message in
ERROR with the reason after the retries while the plain channel is answered throughout. A
change to a step's module takes effect at the next reload (the processes are replaced).
Deterministic: nothing asserts a duration.
"""
from __future__ import annotations

import os

import yaml
from twisted.internet import defer
from twisted.trial import unittest

from engine import status as st
from engine.workers.decide_pool import MAX_CRASHES
from mllp.ack import parse_ack
from mappings.message import HL7Message
from tests.e2e import harness as h
from tests.e2e.test_mappings import adt

STEPS = "tests.workers.cpu_steps"


class CPUStepsTestsMixin(h.EngineCase):

    timeout = 180

    def with_channel(self, config: str, name: str, steps: list[dict], sink_port: int,
                     ack_mode: str = "after-processing") -> None:
        channel = {"name": name,
                   "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                   "response": {"mode": ack_mode}, "steps": steps,
                   "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                                     "port": sink_port, "connect_timeout": "2s",
                                     "ack_timeout": "10s"}]}
        (self.directory / "channels" / f"{name}.yaml").write_text(
            yaml.safe_dump(channel, sort_keys=False))

    @defer.inlineCallbacks
    def test_cpu_and_plain_channels_are_both_answered_and_decided_in_order(self):
        """If a CPU-bound channel and a plain one are sent messages at the same time, then
        every message is acknowledged AA, the cpu messages are decided by another process
        (PID-5 holds its id) and delivered in the order they came."""
        _, sink_port = self.sink()
        cpu_sink, cpu_sink_port = self.sink()
        config = self.config(sink_port, decisions={"processes": 2})
        self.with_channel(config, "cpu", [{"python": f"{STEPS}:busy_20ms"}], cpu_sink_port)
        engine, port = yield self.engine(config)
        cpu = [adt(f"C{n:02d}", "M") for n in range(20)]
        plain = [adt(f"P{n:02d}", "M") for n in range(20)]

        acks = yield defer.gatherResults([h.send_over(engine.source_port("cpu"), cpu),
                                          h.send_over(port, plain, connections=2)])

        self.assertEqual([parse_ack(a).code for sent in acks for _, _, a in sent], ["AA"] * 40)
        yield h.wait_until(lambda: len(cpu_sink.accepted) == 20, 60, "cpu deliveries")
        self.assertEqual([h.msh10(p) for p in cpu_sink.accepted], [h.msh10(p) for p in cpu])
        deciders = {HL7Message.parse(p.decode()).segment("PID").get(5)
                    for p in cpu_sink.accepted}
        self.assertNotIn(f"PROCESS{os.getpid()}", deciders)
        self.assertTrue(all(d.startswith("PROCESS") for d in deciders))
        rows = yield h.stored_messages(engine, channel="cpu")
        self.assertEqual([r["status"] for r in rows], [st.TRANSFORMED] * 20)


class SQLiteCPUStepsTests(CPUStepsTestsMixin, unittest.TestCase):
    backend = "sqlite"

    @defer.inlineCallbacks
    def test_a_step_that_kills_its_process_is_an_error_and_others_are_answered(self):
        """If a step calls os._exit, then its message ends in ERROR saying its process ended
        MAX_CRASHES times, while the plain channel's messages are all acknowledged AA."""
        _, sink_port = self.sink()
        _, killer_sink_port = self.sink()
        config = self.config(sink_port, decisions={"processes": 1})
        self.with_channel(config, "killer", [{"python": f"{STEPS}:exit_process"}],
                          killer_sink_port, ack_mode="after-commit")
        engine, port = yield self.engine(config)

        (killed,) = yield h.send_over(engine.source_port("killer"), [adt("K1", "M")])
        plain = yield h.send_over(port, [adt(f"P{n}", "M") for n in range(10)])
        yield h.wait_until(lambda: engine.decider.processes.crashes == MAX_CRASHES, 90,
                           "the step kills its process at each try")
        plain += yield h.send_over(port, [adt(f"Q{n}", "M") for n in range(10)])

        self.assertEqual(parse_ack(killed[2]).code, "AA")  # after-commit: stored first
        self.assertEqual([parse_ack(a).code for _, _, a in plain], ["AA"] * 20)
        yield h.wait_until(lambda: engine.decider.decided == 1, 30, "the ERROR is committed")
        rows = yield h.stored_messages(engine, channel="killer")
        self.assertEqual(rows[0]["status"], st.ERROR)
        self.assertIn(f"ended the worker process {MAX_CRASHES} times (exit code 3)",
                      rows[0]["error"])

    @defer.inlineCallbacks
    def test_a_changed_step_module_takes_effect_at_the_reload(self):
        """If a step's module (under steps_path) changes and the engine reloads, then the
        next message is decided by the new code."""
        _, sink_port = self.sink()
        cpu_sink, cpu_sink_port = self.sink()
        config = self.config(sink_port, decisions={"processes": 1})
        data = yaml.safe_load(open(config))
        data["steps_path"] = "steps"
        (self.directory / "engine.yaml").write_text(yaml.safe_dump(data))
        (self.directory / "steps").mkdir()
        module = self.directory / "steps" / "versioned_step.py"
        module.write_text(self.step_module("first"))
        self.with_channel(config, "cpu", [{"python": "versioned_step:tag"}], cpu_sink_port)
        engine, _ = yield self.engine(config)
        cpu_port = engine.source_port("cpu")

        yield h.send_over(cpu_port, [adt("V1", "M")])
        module.write_text(self.step_module("the second version"))
        report = yield engine.reload()
        yield h.send_over(cpu_port, [adt("V2", "M")])

        self.assertEqual(report.outcome, "reloaded", report.lines())
        yield h.wait_until(lambda: len(cpu_sink.accepted) == 2, 60, "both are delivered")
        self.assertEqual([HL7Message.parse(p.decode()).segment("PID").get(5)
                          for p in cpu_sink.accepted], ["first", "the second version"])

    @staticmethod
    def step_module(version: str) -> str:
        return (f"VERSION = {version!r}\n\n\ndef tag(message):\n"
                "    message.segment('PID').set(5, VERSION)\n")


class PostgreSQLCPUStepsTests(CPUStepsTestsMixin, unittest.TestCase):
    backend = "postgresql"
