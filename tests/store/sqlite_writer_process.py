"""A process ingesting messages into a SQLite store while another does the same (see
tests/store/test_sqlite_processes.py): prints how many commits succeeded and failed."""
from __future__ import annotations

import sys
import time

from twisted.internet import defer, reactor

from engine import status as st
from engine.store.records import InboundRecord
from engine.store.store import Store


@defer.inlineCallbacks
def ingest(url: str, name: str, count: int, wave: int):
    store = Store(url, reactor, node=name)
    store.start(create_if_empty=False)
    ok = failed = 0
    for start in range(0, count, wave):  # waves: several group commits, each racing the other
        results = yield defer.DeferredList([store.ingest(InboundRecord(
            "c", time.time(), "p", b"MSH|%d" % i, st.RECEIVED, sender=name,
            control_id=f"{name}-{i}")) for i in range(start, min(count, start + wave))])
        ok += sum(1 for success, _ in results if success)
        failed += sum(1 for success, _ in results if not success)
    yield store.stop()
    print(f"ok={ok} failed={failed}", flush=True)


def main() -> None:
    url, name, count, wave = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    reactor.callWhenRunning(lambda: ingest(url, name, count, wave).addBoth(
        lambda r: (print(r) if r is not None else None, reactor.stop())))
    reactor.run()


if __name__ == "__main__":
    main()
