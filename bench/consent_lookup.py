"""
Benchmark: what checking consent adds to a message's decision, on a real SQLite store.

A channel with a ``shared_record`` destination is decided in a worker thread, where
:class:`engine.consent.lookup.StoreConsentLookup` reads the store: the message's PID-3
identifiers, those of the person the identity index says holds them, then the open
oppositions. This measures, in one worker thread, :func:`engine.flow.decision.decide` for an
ORU on the same channel with and without the shared-record destination (the message parsed
either way, so that the difference is the lookup), over a store holding ``--patients``
persons in the identity index (two identifiers each) and an opposition for one in ten of
them.

    .venv/bin/python bench/consent_lookup.py [--patients 10000] [--messages 2000]

Prints the mean and p95 wall time per decision, and decisions per second, for each plan.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.consent.lookup import StoreConsentLookup  # noqa: E402
from engine.flow.consent import ConsentPlan  # noqa: E402
from engine.flow.decision import decide  # noqa: E402
from engine.flow.plan import ChannelPlan, DestinationPlan, InboundMessage  # noqa: E402
from engine.store import consent, migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from identity.model import IdentifierDomain, LocalIdentifier, Sex, Traits  # noqa: E402
from identity.store.persons import create_person, link  # noqa: E402

HOSPITAL = IdentifierDomain("1.2.250.1.999.1.1", "CHU")
LAB = IdentifierDomain("1.2.250.1.999.1.2", "LABO")


def fill(engine, patients: int) -> None:
    with engine.begin() as conn:  # transaction boundary: the whole fixture
        for number in range(patients):
            traits = Traits(birth_name=f"NOM{number}", first_names=("JEAN",),
                            birth_date="19700101", sex=Sex("M"))
            person = create_person(conn, traits, "operator:bench",
                                   LocalIdentifier(HOSPITAL, f"H{number}"))
            link(conn, LocalIdentifier(LAB, f"L{number}"), person, "operator:bench")
            if number % 10 == 0:
                consent.oppose(conn, HOSPITAL.oid, f"H{number}", consent.SHARED_RECORD,
                               "operator:bench")


def oru(number: int) -> InboundMessage:
    text = (f"MSH|^~\\&|LAB|CHU|DPI|CHU|20260101||ORU^R01^ORU_R01|{number}|P|2.5\r"
            f"PID|1||L{number}^^^&{LAB.oid}&ISO^PI||NOM^JEAN\r"
            f"OBX|1|NM|2345-7^GLUCOSE^LN||5.5|mmol/L\r")
    return InboundMessage(number, text, raw=text.encode(), charset="UNICODE UTF-8")


def measure(plan: ChannelPlan, messages: list[InboundMessage]) -> list[float]:
    times: list[float] = []

    def run() -> None:  # in a thread of its own, as the decider runs it
        for message in messages:
            start = time.perf_counter()
            decide(plan, message)
            times.append(time.perf_counter() - start)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{directory}/bench.db", sqlite_synchronous="NORMAL")
        migrate.ensure_current(engine)
        started = time.perf_counter()
        fill(engine, args.patients)
        print(f"{args.patients} persons, {args.patients // 10} oppositions stored in "
              f"{time.perf_counter() - started:.1f} s")
        picks = random.Random(0).choices(range(args.patients), k=args.messages)
        messages = [oru(number) for number in picks]
        lookup = StoreConsentLookup(engine)
        # The same parse and decision, without the lookup: a consent section that reads no
        # field keeps the plan from being routing-only.
        plain = ChannelPlan("lab", (DestinationPlan("dpi"), DestinationPlan("dmp")),
                            marked_slow=True, consent=ConsentPlan(opposition=None))
        shared = ChannelPlan("lab", (DestinationPlan("dpi"),
                                     DestinationPlan("dmp", shared_record=True)),
                             consent_lookup=lookup)
        for name, plan in (("parsed, no lookup", plain), ("shared_record + lookup", shared)):
            times = measure(plan, messages)
            p95 = statistics.quantiles(times, n=20)[-1]
            print(f"{name:>24}: mean {statistics.mean(times) * 1e6:7.0f} us, "
                  f"p95 {p95 * 1e6:7.0f} us, {len(times) / sum(times):7.0f} decisions/s")
        refused = sum(1 for message in messages
                      if len(decide(shared, message).deliveries) == 1)
        print(f"{refused} of {len(messages)} messages kept from the shared record")
        engine.dispose()


if __name__ == "__main__":
    main()
