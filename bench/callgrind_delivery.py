"""
Benchmark tool: instructions a delivery process executes per message written by the ``file``
destination, counted by valgrind's callgrind, which a loaded machine does not disturb.

Fills a SQLite store (or a PostgreSQL database, ``--store postgresql``) with N messages,
each with one QUEUED delivery to vs_baseline.py's plain channel (``file`` destination, two
ordered lanes), then runs the delivery role alone (an
:class:`engine.app.Engine` with roles ``("delivery",)``, as ``aiguillage run --role delivery``
builds it: lanes, leases, the store's reads and group-commit writer, the destination's
threads) under ``valgrind --tool=callgrind`` until every delivery is recorded SENT, then stops
it cleanly. Twice, for ``--few`` and ``--many`` messages: the difference divided by the
difference in messages is what one delivery costs, start-up excluded. System calls count as
the instructions that make them, not the kernel's work (fsync, syncfs, rename).

``--batch K``: each lane reads at most K deliveries at a time, so that it sends and records
batches of K, as when it keeps up with the intake (a wake every few milliseconds finds a few
messages); without it, the lane's own limits (a backlog: reads of 500, batches of 100).

    .venv/bin/python bench/callgrind_delivery.py [--few 400] [--many 2400] [--batch 8]
        [--keep DIR] [--store sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vs_baseline import plain_config  # noqa: E402

CHANNEL, DESTINATION, LANES = "plain", "archive", 2
MESSAGE = (b"MSH|^~\\&|HIS|HOSP|LAB|HOSP|20240101120000||ADT^A01^ADT_A01|C{n}|P|2.5\r"
           b"EVN|A01|20240101120000\r"
           b"PID|1||P{p}^^^HOSP^PI||DOE^JOHN||19700101|M|||1 RUE X^^PARIS^^75001^FRA\r"
           b"PV1|1|I|WARD^101^1\r")


def fill(url: str, count: int) -> None:
    """``count`` TRANSFORMED messages, each with one QUEUED delivery, spread over the lanes;
    the kept counts made to match."""
    from engine import status as st
    from engine.store import counters, migrate
    from engine.store.schema import deliveries, messages
    from engine.store.store import make_engine

    engine = make_engine(url, sqlite_synchronous="NORMAL")
    migrate.ensure_current(engine, create_if_empty=True)
    with engine.begin() as conn:  # transaction boundary: the queue to deliver
        conn.execute(messages.insert(), [
            {"id": i, "channel": CHANNEL, "received_at": 0.0, "node": "bench", "peer": "",
             "control_id": f"C{i}", "message_type": "ADT^A01^ADT_A01",
             "status": st.TRANSFORMED,
             "raw": MESSAGE.replace(b"{n}", b"%d" % i).replace(b"{p}", b"%d" % (i % 500))}
            for i in range(1, count + 1)])
        conn.execute(deliveries.insert(), [
            {"id": i, "message_id": i, "channel": CHANNEL, "destination": DESTINATION,
             "lane": i % LANES, "status": st.QUEUED, "attempts": 0, "created_at": 0.0,
             "updated_at": 0.0, "next_attempt_at": 0.0} for i in range(1, count + 1)])
        counters.repair(conn)
    engine.dispose()


def deliver(config: str, count: int, batch: int) -> None:
    """The process under callgrind: the delivery role until ``count`` deliveries are sent
    and recorded, then a clean stop."""
    from twisted.internet import reactor

    from engine.app import DELIVERY, Engine, load_config
    from engine.delivery.lease import LeasePolicy, process_owner
    from engine.delivery.service import DeliveryService
    from engine.waker import unproxy

    unproxy()  # as `aiguillage run` does (engine.waker)
    settings = load_config(config)
    engine = Engine(settings, reactor, roles=(DELIVERY,), serve_admin=False)
    if batch:  # the same service, its lanes reading ``batch`` at a time
        engine.delivery = DeliveryService(engine.store, reactor, process_owner(settings.node),
                                          lease=LeasePolicy(settings.store.lease_ttl),
                                          fetch_batch=batch)
    outcome: dict = {}

    def check() -> None:
        if sum(lane.sent for lane in engine.lanes.values()) >= count:
            engine.stop().addBoth(lambda result: (outcome.setdefault("stop", result),
                                                  reactor.stop()))
        else:
            reactor.callLater(0.2, check)

    reactor.callWhenRunning(lambda: engine.start().addCallback(lambda _: check()))
    reactor.run()
    if outcome.get("stop") is not None:
        raise SystemExit(f"stopping failed: {outcome['stop']}")


def instructions(count: int, batch: int, keep: Path, store: str = "sqlite") -> int:
    """Instructions of the delivery process's whole run (start, ``count`` deliveries, stop),
    on a SQLite file or a fresh PostgreSQL database (``store``)."""
    from vs_baseline import Database

    with tempfile.TemporaryDirectory() as tmp, Database(store, Path(tmp)) as db:
        url = db.engine_url("engine")
        config = plain_config(Path(tmp) / "engine", url, 9)
        fill(url, count)
        out = keep / f"callgrind.{count}.{batch}"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             __file__, "--child", str(config), "--few", str(count), "--batch", str(batch)],
            capture_output=True, text=True, cwd=ROOT)
        out_folder = Path(tmp) / "engine" / "out"
        written = len([n for n in os.listdir(out_folder) if not n.startswith(".")])
        check_sent(url, count)
    if run.returncode or written != count:
        raise RuntimeError(f"{written} of {count} files written: {run.stderr[-1500:]}")
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {run.stderr[-400:]}")
    return int(found.group(1))


def check_sent(url: str, count: int) -> None:
    from sqlalchemy import func, select

    from engine import status as st
    from engine.store.schema import deliveries
    from engine.store.store import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        sent = conn.execute(select(func.count()).select_from(deliveries)
                            .where(deliveries.c.status == st.SENT)).scalar_one()
    engine.dispose()
    if sent != count:
        raise RuntimeError(f"{sent} of {count} deliveries recorded SENT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--few", type=int, default=400)
    parser.add_argument("--many", type=int, default=2400)
    parser.add_argument("--batch", type=int, default=0,
                        help="deliveries a lane reads at a time (0: the lane's own limits)")
    parser.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the store (postgresql: a database on 127.0.0.1:5432 per run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return deliver(args.child, args.few, args.batch)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="aiguillage-callgrind-"))
    keep.mkdir(parents=True, exist_ok=True)
    few = instructions(args.few, args.batch, keep, args.store)
    many = instructions(args.many, args.batch, keep, args.store)
    print(f"batch {args.batch or 'default'}: {few:,} instructions for {args.few} deliveries, "
          f"{many:,} for {args.many}: {(many - few) / (args.many - args.few):,.0f} per delivery "
          f"(files in {keep})")


if __name__ == "__main__":
    main()
