"""
Benchmark: identity resolution as the engine does it, ADT over MLLP into a running engine.

The same seeded world as bench/identity_quality.py (bench/identity_data.py): every person's
master record is loaded into the store's index (``bulk_load``, domain MASTER), then an engine
is started in a process of its own (``aiguillage run``) with one channel, ``mpi``, whose
``identity: {feed: true}`` step is the shipped one (config/channels/mpi.yaml, on a free port,
acknowledging after processing). Each query of each hard-case class is sent as an ADT^A04 of
its source system (PID-3 a new number in that system's domain, with the INS when the query
has one), one after the other on one connection, and its ACK awaited: the round trip is
commit, decision in a worker thread, the index's resolution, the audit record, the decision's
commit. Once all are answered, each query's identifier is looked up in the index and compared
with the truth: right (held by the person it is), false-link (by another master person),
review (a review item opened for it), missed or new.

    .venv/bin/python bench/identity_mllp.py [--persons 5000] [--queries 2000] [--seed 1]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench] [--compare]

Prints the same table and figures as identity_quality.py, the round-trip latency over MLLP
(p50, p95, p99, messages/s on one connection), and the ACK codes. The master records are
drawn before the queries, as identity_quality.py draws them, so that the same --persons,
--queries and --seed give both benches the same data. ``--compare`` also resolves each
query with the matcher alone on the same master records (in memory, as identity_quality.py
does), once with the bench's traits and once with the traits identity.hl7.pid reads back
from the ADT sent, and counts the queries whose traits or verdicts differ: what the PID
writing and reading, or the engine's path, change.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from identity_data import SYSTEMS, QueryMaker, World  # noqa: E402
from identity_quality import report, verdict  # noqa: E402

from engine.store import migrate  # noqa: E402
from engine.store.store import make_engine  # noqa: E402
from identity.hl7.domains import DomainTable  # noqa: E402
from identity.hl7.pid import read_pid  # noqa: E402
from identity.hl7.pidwriter import write_identifiers, write_traits  # noqa: E402
from identity.matching import Matcher, MemoryCandidateIndex, profile  # noqa: E402
from identity.model import IdentifierDomain, LocalIdentifier  # noqa: E402
from identity.store.bulk import bulk_load  # noqa: E402
from identity.store.schema import id_identifiers, id_review  # noqa: E402
from mappings.message import HL7Message  # noqa: E402
from mllp.framing import FrameDecoder, encode_frame  # noqa: E402
from sqlalchemy import select  # noqa: E402

MASTER = IdentifierDomain("1.2.250.1.999.9.1", "MASTER")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, url: str, port: int) -> Path:
    """engine.yaml (the territory's domains) and the shipped mpi channel on ``port``."""
    channel = yaml.safe_load((ROOT / "config" / "channels" / "mpi.yaml").read_text())
    channel["source"]["port"] = port
    channel["destinations"][0]["directory"] = str(directory / "out")
    (directory / "channels").mkdir()
    (directory / "channels" / "mpi.yaml").write_text(yaml.safe_dump(channel))
    domains = [{"namespace": d.namespace, "oid": d.oid} for d in (MASTER, *SYSTEMS)]
    engine = {"node": "bench", "store": {"url": url}, "log_level": "warning",
              "channels": ["channels/*.yaml"], "identity": {"domains": domains}}
    path = directory / "engine.yaml"
    path.write_text(yaml.safe_dump(engine))
    return path


def adt(number: int, query) -> bytes:
    """ADT^A04 of the query's source system: PID-3 its own new number (and the INS)."""
    system = query.system
    message = HL7Message.parse(
        f"MSH|^~\\&|{system.namespace}|{system.namespace}|MPI|GHT|20260320120000||"
        f"ADT^A04^ADT_A01|B{number}|P|2.5|||||FRA|UNICODE UTF-8\rEVN||20260320120000\rPID|1\r")
    pid = message.segment("PID")
    identifiers = [identifier(number, query)]
    if query.traits.ins is not None:
        ins = query.traits.ins
        identifiers.append(LocalIdentifier(ins.domain, ins.matricule))
    write_identifiers(pid, 3, identifiers)
    write_traits(pid, query.traits)
    return message.to_text().encode("utf-8")


def identifier(number: int, query) -> LocalIdentifier:
    return LocalIdentifier(query.system, f"B{number}")


def send_all(port: int, payloads: list[bytes]) -> tuple[list[float], Counter]:
    """Send each payload after the previous one's answer; (round trips in s, MSA-1 codes)."""
    times, codes = [], Counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        decoder = FrameDecoder()
        for payload in payloads:
            started = time.perf_counter()
            connection.sendall(encode_frame(payload))
            frames: list = []
            while not frames:
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionError("the engine closed the connection")
                frames = list(decoder.feed(chunk))
            times.append(time.perf_counter() - started)
            msa = next(s for s in bytes(frames[0]).split(b"\r") if s.startswith(b"MSA"))
            codes[msa.split(b"|")[1].decode()] += 1
    return times, codes


def verdicts(engine, queries: list, masters: dict[str, int]) -> list[str]:
    """Each query's verdict (right / false-link / review / missed / new), read back from
    the index."""
    with engine.connect() as conn:
        held = {(r.domain, r.value): r.person_id for r in conn.execute(select(id_identifiers))}
        reviewed = {r.person_id for r in conn.execute(select(id_review.c.person_id))}
    master_persons = set(masters.values())
    found = []
    for number, query in enumerate(queries):
        key = identifier(number, query)
        holder = held.get((key.domain.oid, key.value))
        expected = masters.get(query.expected) if query.expected else None
        if holder in reviewed:
            verdict = "review"
        elif expected is not None and holder == expected:
            verdict = "right"
        elif holder in master_persons:
            verdict = "false-link"
        else:
            verdict = "missed" if expected is not None else "new"
        found.append(verdict)
    return found


def tally(queries: list, found: list[str]) -> dict[str, Counter]:
    """Verdicts counted per class, as identity_quality.report wants them."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for query, verdict_ in zip(queries, found):
        counts[query.kind][verdict_] += 1
    return counts


def compare(records: dict, queries: list, payloads: list[bytes], over_mllp: list[str]) -> None:
    """The matcher alone on the same masters: with the bench's traits, then with the
    traits read back from each ADT; what differs from the verdicts over MLLP."""
    index = MemoryCandidateIndex()
    for pid, traits in records.items():
        index.add(pid, profile(traits))
    matcher, table = Matcher(index), DomainTable([MASTER, *SYSTEMS])
    alone, read_back, changed = [], [], Counter()
    for query, payload in zip(queries, payloads):
        traits = read_pid(HL7Message.parse(payload.decode("utf-8")).segment("PID"), table).traits
        changed.update(name for name in traits.__dataclass_fields__
                       if getattr(traits, name) != getattr(query.traits, name))
        for traits_, into in ((query.traits, alone), (traits, read_back)):
            resolution = matcher.resolve(traits_)
            into.append(verdict(resolution.outcome, resolution.person_id, query.expected))
    report("the matcher alone, same masters and queries (identity_quality.py)",
           tally(queries, alone), ([], []))
    print(f"traits read back from the PID that differ from the bench's: "
          f"{dict(changed) or 'none'}")
    for name, other in (("the matcher on the read-back traits", read_back),
                        ("over MLLP", over_mllp)):
        moved = Counter((q.kind, a, b) for q, a, b in zip(queries, alone, other) if a != b)
        print(f"verdicts of {name} that differ from the matcher alone: "
              + (", ".join(f"{k} {a}->{b} {n}" for (k, a, b), n in sorted(moved.items()))
                 or "none"))


def start_engine(config: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", "--config",
                                str(config)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the engine did not listen within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a SQLite file in a temp dir")
    parser.add_argument("--compare", action="store_true",
                        help="also the matcher alone on the same data (see the docstring)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiguillage-identity-") as folder:
        directory = Path(folder)
        url = args.database_url or f"sqlite:///{directory / 'bench.db'}"
        world = World(args.persons, seed=args.seed)
        records = {pid: world.master(pid) for pid in world.indexed}  # before the queries,
        queries = QueryMaker(world, seed=args.seed + 1).queries(args.queries)  # as offline
        engine = make_engine(url)
        migrate.ensure_current(engine)
        started = time.perf_counter()
        with engine.begin() as conn:
            bulk_load(conn, ((LocalIdentifier(MASTER, pid), traits)
                             for pid, traits in records.items()), "operator:bench")
            masters = {r.value: r.person_id for r in conn.execute(
                select(id_identifiers).where(id_identifiers.c.domain == MASTER.oid))}
        print(f"world: {len(world.people)} persons, {len(masters)} indexed in "
              f"{time.perf_counter() - started:.1f} s; {len(queries)} ADT^A04, seed {args.seed}")
        port = free_port()
        payloads = [adt(n, q) for n, q in enumerate(queries)]
        process = start_engine(write_config(directory, url, port), port)
        try:
            times, codes = send_all(port, payloads)
        finally:
            process.terminate()
            process.wait(60)
        over_mllp = verdicts(engine, queries, masters)
        report("over MLLP, the shipped identity: step", tally(queries, over_mllp), ([], []))
        ordered = sorted(times)
        pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000  # noqa: E731
        print(f"ACK round trip ms  p50 {pick(0.5):.2f}  p95 {pick(0.95):.2f}  "
              f"p99 {pick(0.99):.2f}   {len(times) / sum(times):.0f} messages/s on one "
              f"connection; ACK codes {dict(codes)}; load {os.getloadavg()[0]:.1f}")
        if args.compare:
            compare(records, queries, payloads, over_mllp)
        engine.dispose()


if __name__ == "__main__":
    main()
