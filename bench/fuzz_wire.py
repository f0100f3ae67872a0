"""
A long fuzzing run of the wire and mapping readers: the hypothesis properties of
``tests/mllp/test_fuzz.py``, ``tests/mappings/test_fuzz.py`` and the escaping round trips,
with many more examples than the test suite runs.

Each property keeps its invariant (see those modules): the same frames whatever the split,
an ACK for anything the header reader accepts with MSA-2 = MSH-10, a refusal for anything,
a decision for any ACK a peer sends, a parsed message written back byte for byte, and
paths and conditions that parse or say why. A falsifying example is printed by pytest.

Usage: ``.venv/bin/python bench/fuzz_wire.py [examples per property, default 20000]``.
It prints the examples run and the time taken; pytest's exit status is its own.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/mllp/test_fuzz.py", "tests/mappings/test_fuzz.py",
           "tests/mllp/test_escaping.py"]


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    environment = dict(os.environ, AIGUILLAGE_FUZZ_EXAMPLES=str(examples))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *MODULES], cwd=ROOT, env=environment)
    elapsed = time.perf_counter() - started
    print(f"fuzz_wire: up to {examples} examples per property, {elapsed:.0f} s, "
          f"pytest exit status {done.returncode}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
