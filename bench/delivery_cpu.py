"""
Benchmark tool: CPU time the delivery role spends per message written by the ``file``
destination, on SQLite or PostgreSQL, per thread (the reactor's, the store writer's, the
destination's), and the PostgreSQL server's.

The queue is filled as bench/callgrind_delivery.py fills it (vs_baseline.py's plain channel,
two ordered lanes) with ``--many`` messages, then the delivery role alone runs until every
delivery is recorded SENT; the CPU is read once ``--few`` were sent (start-up excluded) and
at the end. Without valgrind: the kernel's work for
the files (inodes, pages, directory entries, flushes) is in the figures, as in vs_baseline's
``engine`` runs; alternate trees (``PYTHONPATH``) and repeat, the machine's noise is in them
too.

``--batch K``: each lane reads at most K deliveries at a time (as when it keeps up with
the intake at a given rate); without it, the lane's own limits.

    PYTHONPATH=TREE .venv/bin/python bench/delivery_cpu.py [--store postgresql] [--batch 50]
        [--few 2000] [--many 12000] [--rounds 1] [--work-dir DIR] [--profile FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import callgrind_delivery as cd  # noqa: E402
import vs_baseline as vb  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROFILE: list[str] = []  # --profile: the file cProfile writes the reactor thread's calls to


def thread_cpu() -> dict[str, tuple[float, float]]:
    """(user, system) seconds of this process's threads, by kind: the reactor's, the store
    writer's, the ``file`` destination's, the others'."""
    import threading

    kinds = {t.native_id: t.name for t in threading.enumerate()}
    figures: dict[str, list[float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = kinds.get(int(tid), "")
        kind = ("reactor" if int(tid) == os.getpid() else "file" if "file-destination" in name
                else "writer" if "writer" in name else "other")
        total = figures.setdefault(kind, [0.0, 0.0])
        total[0] += int(fields[11]) / CLOCK_TICKS
        total[1] += int(fields[12]) / CLOCK_TICKS
    return {k: (u, s) for k, (u, s) in figures.items()}


def child(config: str, count: int, batch: int, skip: int) -> None:
    """The delivery role until ``count`` deliveries are sent; prints each thread's CPU (and
    the database's server processes') when ``skip`` were sent and at the end."""
    from twisted.internet import reactor

    from engine.app import DELIVERY, Engine, load_config
    from engine.delivery.lease import LeasePolicy, process_owner
    from engine.delivery.service import DeliveryService

    settings = load_config(config)
    engine = Engine(settings, reactor, roles=(DELIVERY,), serve_admin=False)
    if batch:
        engine.delivery = DeliveryService(engine.store, reactor, process_owner(settings.node),
                                          lease=LeasePolicy(settings.store.lease_ttl),
                                          fetch_batch=batch)
    database = settings.store.url.rsplit("/", 1)[1]
    postgresql = settings.store.url.startswith("postgresql")
    marks: list[dict] = []

    def mark(sent: int) -> None:
        marks.append({"sent": sent, "cpu": thread_cpu(), "wall": time.perf_counter(),
                      "server": sum(vb.backend_cpu(database).values()) if postgresql else 0.0})

    def check() -> None:
        sent = sum(lane.sent for lane in engine.lanes.values())
        if not marks and sent >= skip:
            mark(sent)
        if sent >= count:
            mark(sent)
            engine.stop().addBoth(lambda _: reactor.stop())
        else:
            reactor.callLater(0.005, check)

    reactor.callWhenRunning(lambda: engine.start().addCallback(lambda _: check()))
    reactor.run()
    print(json.dumps(marks))


def measure(store: str, count: int, skip: int, batch: int, work: Path) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix=f"deliver-{count}-", dir=work))
    with vb.Database(store, folder) as db:
        url = db.engine_url("engine")
        config = vb.plain_config(folder / "engine", url, 9)
        if store == "postgresql":
            subprocess.run([str(ROOT / ".venv" / "bin" / "aiguillage"), "db", "upgrade",
                            "--config", str(config)], check=True, capture_output=True)
        cd.fill(url, count)
        profile = ["-m", "cProfile", "-o", PROFILE[0]] if PROFILE else []
        run = subprocess.run([sys.executable, *profile, __file__, "--child", str(config),
                              "--many", str(count), "--few", str(skip), "--batch", str(batch)],
                             capture_output=True, text=True, cwd=ROOT)
        if run.returncode:
            raise RuntimeError(run.stderr[-2000:])
        marks = json.loads(run.stdout.strip().splitlines()[-1])
        cd.check_sent(url, count)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--few", type=int, default=2000,
                        help="deliveries sent before the measure starts (start-up excluded)")
    parser.add_argument("--many", type=int, default=12000, help="deliveries queued")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--profile", metavar="FILE",
                        help="one run of --many under cProfile (the reactor thread's calls)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.many, args.batch, args.few)
    if args.profile:
        PROFILE.append(args.profile)
        measure(args.store, args.many, args.few, args.batch, Path(tempfile.mkdtemp(
            prefix="delivery_cpu-", dir=args.work_dir)))
        return print(f"profile in {args.profile}")
    work = Path(tempfile.mkdtemp(prefix="delivery_cpu-", dir=args.work_dir))
    import engine

    print(f"tree: {Path(engine.__file__).resolve().parent.parent}")
    for _ in range(args.rounds):
        first, last = measure(args.store, args.many, args.few, args.batch, work)
        span = last["sent"] - first["sent"]
        parts, total = [], 0.0
        for kind in sorted(last["cpu"]):
            u1, s1 = last["cpu"][kind]
            u0, s0 = first["cpu"].get(kind, (0.0, 0.0))
            total += u1 + s1 - u0 - s0
            parts.append(f"{kind} {(u1 - u0) / span * 1e6:.1f}+{(s1 - s0) / span * 1e6:.1f}")
        server = (last["server"] - first["server"]) / span * 1e6
        print(f"{args.store} batch {args.batch or 'default'}: process {total / span * 1e6:.1f} "
              f"us/delivery (user+sys: {', '.join(parts)}); server {server:.1f}; "
              f"{span / (last['wall'] - first['wall']):.0f} deliveries/s")
    print(f"kept {work}: remove it when no other run follows soon")


if __name__ == "__main__":
    main()
