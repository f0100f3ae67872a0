"""
Benchmark: quality and speed of identity resolution on synthetic French identities.

Builds a seeded world (bench/identity_data.py), indexes every person's master
record in the in-memory candidate index, then resolves queries of each
hard-case class (re-visits with typos, swapped first names, married names,
qualified INS; newcomers who are twins, household members, homonyms with a
common name; INS conflicts) and compares each outcome with the truth.

    .venv/bin/python bench/identity_quality.py [--persons 100000] [--queries 20000] [--seed 1] [--em]

Prints, per class and overall: linked right, linked wrong (false links),
review, new; then precision, recall, false links per 10 000 resolutions, the
review rate, and resolution latency (p50, p95, p99 and rate of
Matcher.resolve from traits to decision, one thread): wall-clock time, and the
thread's CPU time, which other processes sharing the machine do not inflate. ``--em`` also runs the same queries
with a model learnt without labels: m, u and the prevalence by EM on the
candidate pairs of a separate sample of queries (thresholds unchanged).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from identity_data import QueryMaker, World  # noqa: E402

from identity.matching import Matcher, MatchModel, MemoryCandidateIndex, Outcome, profile  # noqa: E402
from identity.matching.blocking import blocking_keys  # noqa: E402
from identity.matching.compare import compare  # noqa: E402
from identity.matching.em import estimate  # noqa: E402


def build_index(world: World) -> MemoryCandidateIndex:
    index = MemoryCandidateIndex()
    for pid in world.indexed:
        index.add(pid, profile(world.master(pid)))
    return index


def verdict(outcome: Outcome, person_id: str | None, expected: str | None) -> str:
    """right / false-link / review / missed / new (a newcomer left new)."""
    if outcome is Outcome.LINKED:
        return "right" if person_id == expected else "false-link"
    if outcome is Outcome.REVIEW:
        return "review"
    return "missed" if expected else "new"


def run(matcher: Matcher, queries: list) -> tuple[dict, tuple[list[int], list[int]]]:
    """Resolve every query; tally verdicts per class and time each resolution."""
    tally: dict[str, Counter] = defaultdict(Counter)
    latencies: tuple[list[int], list[int]] = ([], [])
    for query in queries:
        started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
        resolution = matcher.resolve(query.traits)
        latencies[0].append(time.perf_counter_ns() - started)
        latencies[1].append(time.thread_time_ns() - cpu_started)
        tally[query.kind][verdict(resolution.outcome, resolution.person_id, query.expected)] += 1
    return tally, latencies


def report(title: str, tally: dict, latencies: tuple[list[int], list[int]]) -> None:
    print(f"\n== {title}")
    columns = ("right", "false-link", "review", "missed", "new")
    print(f"{'class':<16}{'n':>7}" + "".join(f"{c:>12}" for c in columns))
    total = Counter()
    for kind in sorted(tally):
        counts = tally[kind]
        total.update(counts)
        print(f"{kind:<16}{sum(counts.values()):>7}" + "".join(f"{counts[c]:>12}" for c in columns))
    print(f"{'all':<16}{sum(total.values()):>7}" + "".join(f"{total[c]:>12}" for c in columns))
    summary(tally, total, latencies)


def summary(tally: dict, total: Counter, latencies: tuple[list[int], list[int]]) -> None:
    resolutions = sum(total.values())
    revisits = sum(sum(c.values()) for kind, c in tally.items() if not kind.endswith("-new")
                   and kind != "ins-conflict")
    right = total["right"]
    linked = right + total["false-link"]
    revisit_review = sum(c["review"] for kind, c in tally.items() if not kind.endswith("-new")
                         and kind != "ins-conflict")
    hard_new = sum(tally[k]["false-link"] for k in ("twin-new", "household-new", "twin-revisit"))
    print(f"precision (auto links)      {right / max(linked, 1):.5f}")
    print(f"recall, linked auto         {right / max(revisits, 1):.4f}   (target >= 0.95)")
    print(f"recall, linked or review    {(right + revisit_review) / max(revisits, 1):.4f}   (target >= 0.99)")
    print(f"false links                 {total['false-link']} in {resolutions} = "
          f"{total['false-link'] * 10000 / max(resolutions, 1):.2f} per 10 000   (target <= 1)")
    print(f"false links twins/household {hard_new}   (target 0)")
    print(f"review rate                 {total['review'] / max(resolutions, 1):.4f}")
    for clock, values in zip(("wall", "cpu"), latencies):
        if not values:  # identity_mllp.py times round trips, not resolutions
            continue
        ordered = sorted(values)
        pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)] / 1e6  # noqa: E731
        print(f"{clock} ms  p50 {pick(0.50):.3f}  p95 {pick(0.95):.3f}  p99 {pick(0.99):.3f}  "
              f"max {ordered[-1] / 1e6:.3f}   rate {len(ordered) / (sum(ordered) / 1e9):.0f}/s")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def estimated_model(matcher: Matcher, queries: list) -> MatchModel:
    """m, u and the prevalence by EM on every blocked candidate pair of ``queries``,
    no ground truth used. The u so learnt are those among candidates, which is
    where the scores are used."""
    vectors = []
    for query in queries:
        p = profile(query.traits)
        vectors.extend(compare(p, person.profile) for person in matcher.index.candidates(blocking_keys(p)))
    result = estimate(vectors, start=matcher.model)
    print(f"\nEM: {len(vectors)} candidate pairs, prevalence {result.prevalence:.3f}, "
          f"{result.iterations} iterations, converged {result.converged}")
    for name in ("family", "first", "birth_date", "birth_place"):
        print(f"  {name:<12} m {' '.join(f'{v:.3f}' for v in result.model.m[name])}   "
              f"u {' '.join(f'{v:.4f}' for v in result.model.u[name])}")
    return result.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--em", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    world = World(args.persons, seed=args.seed)
    index = build_index(world)
    print(f"world: {len(world.people)} persons, {len(index)} indexed, built and indexed in "
          f"{time.perf_counter() - started:.1f} s; {args.queries} queries, seed {args.seed}")
    queries = QueryMaker(world, seed=args.seed + 1).queries(args.queries)
    # The index lives as long as the process: keep the collector from walking
    # its million objects during the timed resolutions, as a server would.
    gc.collect()
    gc.freeze()
    matcher = Matcher(index)
    report("default model", *run(matcher, queries))
    if args.em:
        sample = QueryMaker(world, seed=args.seed + 2).queries(min(args.queries, 5000))
        report("model estimated by EM", *run(Matcher(index, estimated_model(matcher, sample)), queries))


if __name__ == "__main__":
    main()
