"""
Benchmark: what a reload costs a running engine.

A real engine (SQLite store in a temporary folder) runs CHANNELS channels, each with an MLLP
source on a loopback port, a file destination, and a code table of ROWS rows translating
PID-8. Timed, each REPEAT times:

- reload, nothing changed: read and check every file, digest them, find nothing to do;
- reload, one table changed: the same, then one channel's plan swapped.

For each, and for one idle second as a baseline, the wall time of ``Engine.reload()`` and the longest the reactor went without a
turn meanwhile (a 1 ms LoopingCall measures it): reading the files happens in a thread, so
that gap is what the reactor itself spent (comparing, swapping), the delay a sender's ACK
could see.

    .venv/bin/python bench/reload_speed.py [--channels 20] [--rows 1000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, task  # noqa: E402

from engine.app import Engine, load_config  # noqa: E402
from mappings.tables import synthetic_table_csv  # noqa: E402

CHANNEL = """\
name: c{index}
source:
  type: mllp
  port: 0
tables:
  codes: tables/c{index}.csv
steps:
  - translate: PID-8
    table: codes
destinations:
  - name: out
    type: file
    directory: out/c{index}
"""


def write_configuration(folder: Path, channels: int, rows: int) -> str:
    (folder / "channels" / "tables").mkdir(parents=True)
    (folder / "engine.yaml").write_text(
        "store:\n  url: sqlite:///store.db\nchannels:\n  - channels/*.yaml\nlog_level: error\n")
    table = synthetic_table_csv(rows)
    for index in range(channels):
        (folder / "channels" / f"c{index}.yaml").write_text(CHANNEL.format(index=index))
        (folder / "channels" / "tables" / f"c{index}.csv").write_text(table)
    return str(folder / "engine.yaml")


class TurnGap:
    """The longest time between two reactor turns while running (a 1 ms LoopingCall)."""

    def __init__(self, clock):
        self._clock = clock
        self._last = clock.seconds()
        self.worst = 0.0
        self._call = task.LoopingCall(self._tick)
        self._call.clock = clock

    def _tick(self) -> None:
        now = self._clock.seconds()
        self.worst = max(self.worst, now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = self._clock.seconds()
        self.worst = 0.0
        self._call.start(0.001)

    def stop(self) -> float:
        self._call.stop()
        return self.worst


@defer.inlineCallbacks
def timed_reload(engine, reactor, change=None):
    if change is not None:
        change()
    gap = TurnGap(reactor)
    gap.start()
    started = time.perf_counter()
    report = yield engine.reload()
    elapsed = time.perf_counter() - started
    assert report.outcome == "reloaded", report.lines()
    return elapsed, gap.stop()


@defer.inlineCallbacks
def run(reactor, options) -> defer.Deferred:
    with tempfile.TemporaryDirectory(prefix="aiguillage-reload-bench-") as name:
        folder = Path(name)
        config = write_configuration(folder, options.channels, options.rows)
        engine = Engine(load_config(config), reactor)
        yield engine.start()
        yield engine.reload()  # waits for the start's digests
        table = folder / "channels" / "tables" / "c0.csv"
        try:
            gap = TurnGap(reactor)
            gap.start()
            yield task.deferLater(reactor, 1.0, lambda: None)
            print(f"{'idle, for 1 s':18}                          longest reactor gap "
                  f"{gap.stop() * 1000:5.1f} ms")
            for label, change in (("nothing changed", None),
                                  ("one table changed", lambda: table.write_text(
                                      table.read_text() + f"X{time.time_ns()},x,x,x\n"))):
                walls, gaps = [], []
                for _ in range(options.repeat):
                    wall, gap = yield timed_reload(engine, reactor, change)
                    walls.append(wall)
                    gaps.append(gap)
                print(f"{label:18} reload {statistics.median(walls) * 1000:7.1f} ms (median), "
                      f"longest reactor gap {max(gaps) * 1000:5.1f} ms")
        finally:
            yield engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}; "
          f"{options.channels} channels, {options.rows}-row table each")
    task.react(run, [options])


if __name__ == "__main__":
    main()
