"""
Benchmark tool: how long the upgrade to sender-ordered duplicate keys (schema revision 0011)
takes on a store of ``--messages`` plain-channel messages keyed the earlier way.

Fills a fresh store at revision 0010 (rows written directly, keys made by the code of that
revision: SHA-256 of the whole identity), then times ``migrate.upgrade`` to the head.

    .venv/bin/python bench/rekey_speed.py [--messages 100000] [--store sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from sqlalchemy import text  # noqa: E402

from engine.flow.dedupe import identity  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.dedupekey import sha256_key  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from engine.synthetic import control_id_of, message_stream  # noqa: E402
from mllp.header import read_header  # noqa: E402
from tests.dbs import database  # noqa: E402

INSERT = text(
    "INSERT INTO messages (id, channel, received_at, node, peer, sender, control_id, status, "
    "dedupe_key, raw) VALUES (:id, 'plain', 1.0, 'n', '', 'HIS|HOSP', :ctl, 'TRANSFORMED', "
    ":key, :raw)")


def fill(engine, count: int) -> None:
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0010_lean_intake")
    rows = []
    for n, payload in enumerate(message_stream(count, kinds=("adt", "oru")), start=1):
        key = sha256_key("plain", identity(read_header(payload)))
        rows.append({"id": n, "ctl": control_id_of(payload), "key": key, "raw": payload})
        if len(rows) == 10_000:
            with engine.begin() as conn:
                conn.execute(INSERT, rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(INSERT, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.store, Path(tmp)) as url:
        engine = make_engine(url)
        fill(engine, args.messages)
        started = time.perf_counter()
        before, after = migrate.upgrade(engine)
        seconds = time.perf_counter() - started
        engine.dispose()
    print(f"{args.store}: {before} -> {after} on {args.messages} messages in {seconds:.1f} s "
          f"({seconds / args.messages * 1e6:.0f} us a message)")


if __name__ == "__main__":
    main()
