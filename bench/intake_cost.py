"""
Benchmark: CPU time of the intake per message, for the routing-only bench channel and the same
channel carrying the 10-step ADT mapping (bench/mapping_cost.py's channels), on one core.

What it isolates: the work the reactor thread does for one inbound message between its bytes
and its ACK (read MSH, decode, decide, build the record, build the ACK), with a store that
answers at once, so that neither the disk nor the writer thread
nor the network is in the figure. The difference between the two channels is what a mapping
adds on the acknowledgement path; bench/mapping_cost.py measures what it costs end to end.

    .venv/bin/python bench/intake_cost.py [--messages 5000] [--rounds 5]

Prints the best of ``rounds`` (CPU time, time.process_time) for each channel.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from twisted.internet import defer, task  # noqa: E402

from engine import status as st  # noqa: E402
from engine.app import channel_plan, load_config  # noqa: E402
from engine.flow.intake import Intake  # noqa: E402
from engine.flow.queued import QueuedWork  # noqa: E402
from engine.store.records import IngestResult  # noqa: E402
from engine.synthetic import message_stream  # noqa: E402
from mapping_cost import channel_sections  # noqa: E402
from mllp_throughput import write_config  # noqa: E402


class InstantStore:
    """Commits at once: the ingest's outcome as the real store would give it, no I/O."""

    def __init__(self) -> None:
        self.count = 0

    def ingest(self, record) -> defer.Deferred:
        self.count += 1
        decision = record.decision
        if decision is None:
            return defer.succeed(IngestResult(self.count, st.RECEIVED))
        return defer.succeed(IngestResult(self.count, decision.status, None,
                                          tuple(range(len(decision.deliveries)))))


class IdleDecider:
    """Takes what a slow plan would decide later (unused by these two channels)."""

    def submit(self, channel, message) -> defer.Deferred:
        return defer.Deferred()

    def holds(self, channel) -> bool:
        return False


def intake_for(kind: str) -> Intake:
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-intake-"))
    config = write_config(folder, f"sqlite:///{folder}/unused.db", 1, 2, 4,
                          channel_extra=channel_sections(kind))
    plan = channel_plan(load_config(str(config)).channels[0])
    clock = task.Clock()  # the lanes are told on its next turn, which never comes here
    return Intake(InstantStore(), {plan.name: plan}, IdleDecider(),
                  QueuedWork(clock, lambda keys: None))


def best_cpu(intake: Intake, payloads: list[bytes], rounds: int) -> float:
    """The best CPU time per message, in microseconds, over ``rounds`` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for payload in payloads:
            intake.receive("bench", payload, None)
        best = min(best, time.process_time() - start)
    return best / len(payloads) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
          f"{platform.python_version()})")
    payloads = list(message_stream(args.messages, kinds=("adt",)))
    figures = {kind: best_cpu(intake_for(kind), payloads, args.rounds)
               for kind in ("plain", "mapped")}
    for kind, micros in figures.items():
        print(f"  {kind:7} Intake.receive {micros:6.1f} us/msg CPU (best of {args.rounds})")
    print(f"  the mapping adds {figures['mapped'] - figures['plain']:.1f} us/msg at intake")


if __name__ == "__main__":
    main()
