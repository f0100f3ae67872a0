"""
Benchmark: a plain channel's ACK latency while another channel's every message takes 20 ms
in a ``python:`` step.

Starts an MLLP sink (bench/sink.py) and the engine (`aiguillage run`) in processes of their
own, with two channels on one store: ``bench`` (routing only, MLLP -> sink) and ``slow`` (a
20 ms ``python:`` step from bench/noop_step.py, after-processing ACKs, MLLP -> sink). Drives
``bench`` from C connections (each waits for its ACK before sending the next) and, at the same
time, ``slow`` from S connections for as long as ``bench`` is driven; prints ``bench``'s ACK
p50 / p99 / max, and the same run without the slow load for comparison.

    .venv/bin/python bench/slow_isolation.py [--messages 10000] [--connections 4]
        [--slow-connections 2] [--step busy|sleep] [--store sqlite|postgresql]
        [--decisions both|threads|processes] [--processes 1]

``--decisions``: where the slow channel's messages are decided (engine.yaml ``decisions:
{processes: N}``): ``threads`` (N = 0, the engine process's threads), ``processes`` (N =
``--processes``, worker processes), ``both`` (default: one run each, after the run alone).

``busy``: the step computes for 20 ms in pure Python, holding the interpreter lock but for
the switch interval; ``sleep``: it waits 20 ms.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml  # noqa: E402

from engine.synthetic import message_stream  # noqa: E402
from mllp_throughput import (  # noqa: E402
    create_store, drop_store, engine_cpu, free_port, percentile, read_line_starting,
    write_config)


def add_slow_channel(folder: Path, port: int, sink_port: int, step: str) -> None:
    channel = {"name": "slow",
               "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
               "response": {"mode": "after-processing"},
               "steps": [{"python": f"bench.noop_step:{step}_20ms"}],
               "destinations": [{"name": "sink", "type": "mllp", "host": "127.0.0.1",
                                 "port": sink_port}]}
    (folder / "channels" / "slow.yaml").write_text(yaml.safe_dump(channel, sort_keys=False))


def drive(port: int, slow_port: int | None, messages: list[bytes], connections: int,
          slow_messages: list[bytes], slow_connections: int) -> tuple[list[float], int]:
    """Send ``messages`` to ``port`` and, meanwhile, ``slow_messages`` (each once, never
    a duplicate, which would not be decided) to ``slow_port``; (the plain ACK latencies,
    slow ACKs received) — blocking."""
    from twisted.internet import defer, reactor

    from mllp.client import MLLPClient

    latencies: list[float] = []
    done = {"plain": False, "slow": 0}

    @defer.inlineCallbacks
    def plain(share: list[bytes]):
        client = MLLPClient.for_address(reactor, "127.0.0.1", port, ack_timeout=60)
        for payload in share:
            sent = time.perf_counter()
            yield client.send(payload)
            latencies.append(time.perf_counter() - sent)
        yield client.close()

    @defer.inlineCallbacks
    def slow(share: list[bytes]):
        client = MLLPClient.for_address(reactor, "127.0.0.1", slow_port, ack_timeout=600)
        for payload in share:
            if done["plain"]:
                break
            yield client.send(payload)
            done["slow"] += 1
        yield client.close()

    def run() -> None:
        slows = [slow(slow_messages[i::slow_connections]) for i in range(slow_connections)] \
            if slow_port is not None else []
        plains = defer.gatherResults([plain(messages[i::connections])
                                      for i in range(connections)], consumeErrors=True)
        plains.addBoth(lambda _: done.update(plain=True))
        d = defer.gatherResults([plains] + slows, consumeErrors=True)
        d.addErrback(lambda f: print("send failed:", f.getErrorMessage(), file=sys.stderr))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    return latencies, done["slow"]


def run_one(store: str, count: int, connections: int, slow_connections: int,
            step: str, processes: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-isolation-"))
    url, database = create_store(store, folder)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sink.py"), "--expect",
                             str(10 ** 9)], stdout=subprocess.PIPE, text=True, env=env)
    sink_port = int(read_line_starting(sink, "PORT", 20).split()[1])
    port, slow_port = free_port(), free_port()
    config = write_config(folder, url, port, sink_port, 4)
    with open(config, "a") as engine_yaml:
        engine_yaml.write(f"decisions:\n  processes: {processes}\n")
    if slow_connections:
        add_slow_channel(folder, slow_port, sink_port, step)
    cli = [sys.executable, "-m", "engine.cli.main"]
    subprocess.run(cli + ["db", "upgrade", "--config", str(config)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    engine = subprocess.Popen(cli + ["run", "--config", str(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        read_line_starting(engine, "aiguillage", 30)
        messages = list(message_stream(count, kinds=("adt",), patients=1000,
                                       start=int(time.time())))
        slow_messages = list(message_stream(count, kinds=("adt",), patients=50,
                                            start=int(time.time()) + 10 ** 6))
        before = engine_cpu(engine.pid)
        start = time.perf_counter()
        latencies, slow_acks = drive(port, slow_port if slow_connections else None, messages,
                                     connections, slow_messages, slow_connections)
        elapsed = time.perf_counter() - start
        after = engine_cpu(engine.pid)
        where = f"{processes} worker process(es)" if processes else "threads"
        what = (f"with {slow_connections} connection(s) to a channel whose step takes 20 ms "
                f"({step}, decided in {where}): {slow_acks} slow ACKs"
                if slow_connections else "alone")
        print(f"{store:>10}  plain channel {what}")
        print(f"{'':>10}  {count} ADT over {connections} connections, "
              f"{count / elapsed:7.0f} ACKs/s; ACK p50 {percentile(latencies, 50) * 1000:6.2f} ms"
              f"  p99 {percentile(latencies, 99) * 1000:6.2f} ms"
              f"  max {max(latencies) * 1000:6.1f} ms", flush=True)
        if before and after:
            print(f"{'':>10}  engine CPU {after[0] - before[0]:.1f} s reactor thread, "
                  f"{after[1] - before[1]:.1f} s other threads", flush=True)
    finally:
        for process in (engine, sink):
            process.terminate()
            process.wait(30)
        drop_store(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--slow-connections", type=int, default=2)
    parser.add_argument("--step", choices=("busy", "sleep"), default="busy")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--decisions", choices=("both", "threads", "processes"),
                        default="both")
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes in the processes run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-processes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one run per process: a reactor runs once
        run_one(args.store, args.messages, args.connections, args.child, args.step,
                args.child_processes)
        return
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
          f"{platform.python_version()}), {os.cpu_count()} cores", flush=True)
    runs = [(0, 0)]
    if args.decisions in ("both", "threads"):
        runs.append((args.slow_connections, 0))
    if args.decisions in ("both", "processes"):
        runs.append((args.slow_connections, args.processes))
    for slow, processes in runs:
        subprocess.run([sys.executable, __file__, "--child", str(slow), "--messages",
                        str(args.messages), "--connections", str(args.connections),
                        "--step", args.step, "--store", args.store,
                        "--child-processes", str(processes)], check=False)


if __name__ == "__main__":
    main()
