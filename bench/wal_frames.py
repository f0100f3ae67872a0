"""
Benchmark tool: SQLite WAL frames (4 KiB pages) written per group commit of the intake.

Each page a commit dirties is written to the WAL (a write and a checksum), then once more to
the database by the next checkpoint: pages per commit are what the writer thread pays beyond
its statements. This commits batches of ``--batch`` plain-channel messages (decided before
their commit, one delivery each, as on vs_baseline.py's plain channel) through the store's own
write (engine.store.ops.IngestOp) on a store already holding ``--messages``, with automatic
checkpoints off, and prints the frames the measured commits wrote, then how many of them per
commit belong to each table and index (the page numbers of the WAL's frames, named by
SQLite's ``dbstat`` table).

    .venv/bin/python bench/wal_frames.py [--messages 4000] [--batch 4] [--commits 100]
        [--kinds adt,oru] [--page-size 4096]

It also prints the bytes written to the WAL per message (frames with their headers), the
overflow pages per message of ``messages`` (a row larger than a page spills its ``raw`` into
a chain of them) and the depth of each tree written.
"""
from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: `PYTHONPATH=TREE` measures TREE's code

from sqlalchemy import event  # noqa: E402

from engine import status as st  # noqa: E402
from engine.flow import dedupe  # noqa: E402
from engine.store import migrate, ops  # noqa: E402
from engine.store.rawsql import RawStatements  # noqa: E402
from engine.store.records import Decision, InboundRecord, NewDelivery  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from engine.synthetic import message_stream  # noqa: E402
from mllp.header import read_header  # noqa: E402


def records(count: int, kinds: tuple[str, ...] = ("adt",)) -> list[InboundRecord]:
    """Plain-channel records as the intake builds them: decided, one delivery on 2 lanes;
    ``kinds`` of message as engine.synthetic.message_stream makes them."""
    made = []
    for n, payload in enumerate(message_stream(count, kinds=kinds)):
        header = read_header(payload)
        made.append(InboundRecord(
            channel="plain", received_at=time.time(), peer="mllp://127.0.0.1:40000",
            raw=payload, status=st.RECEIVED,
            sender=f"{header.sending_application}|{header.sending_facility}",
            control_id=header.control_id, message_type=header.message_type,
            charset="UNICODE UTF-8", identity=dedupe.identity(header),
            decision=Decision(st.TRANSFORMED, deliveries=(NewDelivery("archive", n % 2),))))
    return made


def frames_by_tree(raw: Any, wal: Path) -> Counter:
    """The frames of the ``wal`` file (not yet checkpointed), counted by the table or index
    their page belongs to (``dbstat``; "sqlite_schema" for page 1, the file's header)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        pages.append(struct.unpack(">I", data[offset:offset + 4])[0])
        offset += FRAME_HEADER + page_size
    names = dict(raw.execute("SELECT pageno, name FROM dbstat").fetchall())
    return Counter(names.get(page, "?") for page in pages)


def with_page_size(engine: Any, size: int) -> None:
    """Give the new store of ``engine`` pages of ``size`` bytes: ``PRAGMA page_size`` on each
    connection before the store's own settings (WAL mode fixes the size once the file has
    its first page; a store that has one keeps it)."""
    event.listen(engine, "connect",
                 lambda dbapi, _: dbapi.execute(f"PRAGMA page_size={int(size)}"), insert=True)


def tree_depths(raw: Any, names: Iterable[str]) -> list[tuple[str, int]]:
    """The depth in pages, root to leaf, of the tables and indexes ``names`` (``dbstat``'s
    paths: the root is "/", its children "/000/", their children "/000/000/"...)."""
    wanted = set(names)
    return [(name, depth) for name, depth in raw.execute("SELECT name, max(length(path) - length(replace(path, '/', ''))) "
                       "FROM dbstat WHERE pagetype != 'overflow' GROUP BY name "
                       "ORDER BY name").fetchall() if name in wanted]


WAL_HEADER, FRAME_HEADER = 32, 24  # bytes (sqlite.org/fileformat.html, the WAL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=0,
                        help="bytes per page of the new store (default: SQLite's, 4096)")
    parser.add_argument("--kinds", default="adt",
                        help="messages made, comma-separated: adt (1.3-1.6 kB), oru (4.5 kB)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aiguillage-wal-"))
    engine = make_engine(f"sqlite:///{folder}/store.db")
    event.listen(engine, "connect",
                 lambda dbapi, _: dbapi.execute("PRAGMA wal_autocheckpoint=0"))
    if args.page_size:
        with_page_size(engine, args.page_size)
    migrate.ensure_current(engine, create_if_empty=True)
    write = ops.IngestOp(ops.IdAllocator(engine, "messages"), "bench",
                         RawStatements(engine.dialect), ops.IdAllocator(engine, "deliveries"))
    measured = args.batch * args.commits
    made = records(args.messages + measured, kinds=tuple(args.kinds.split(",")))
    conn = engine.connect()

    def commit_all(items: list[InboundRecord]) -> None:
        for start in range(0, len(items), args.batch):
            batch = items[start:start + args.batch]
            write.prepare(batch)
            with conn.begin():  # transaction boundary: one group commit, as the writer's
                results = write.apply(conn, batch)
            write.finish(conn, results)  # as the writer's, after the commit

    commit_all(made[:args.messages])
    raw = conn.connection.dbapi_connection
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    commit_all(made[args.messages:])
    by_tree = frames_by_tree(raw, Path(f"{folder}/store.db-wal"))
    frames = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    overflow = raw.execute("SELECT count(*) FROM dbstat WHERE name = 'messages' "
                           "AND pagetype = 'overflow'").fetchone()[0]
    depths = ", ".join(f"{name} {depth}" for name, depth in tree_depths(raw, by_tree))
    print(f"{frames / args.commits:.1f} WAL frames per commit of {args.batch} messages "
          f"({args.commits} commits on a store of {args.messages}), pages of {page_size} "
          f"bytes: {frames * (page_size + FRAME_HEADER) / measured:,.0f} bytes to the WAL per "
          f"message; messages' overflow pages: {overflow / (args.messages + measured):.2f} "
          f"per message; tree depths: {depths}")
    for name, count in by_tree.most_common():
        print(f"  {count / args.commits:6.2f}  {name}")
    conn.close()
    engine.dispose()


if __name__ == "__main__":
    main()
