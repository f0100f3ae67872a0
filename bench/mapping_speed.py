"""
Benchmark: the ``steps:`` language on one core, no I/O.

Two mappings, each timed three ways:

- mapping only: each message is parsed fresh (the mapping changes it) outside the clock, and
  only ``Program.run`` is timed: the figure the target (>= 20 000 messages/s) applies to;
- parse only: ``HL7Message.parse`` of the same texts;
- parse + map + write: ``parse``, ``run``, ``to_text`` per message.

(1) ADT: a 10-step mapping of a PAM France A01 (engine.synthetic.adt_message): set MSH-5/6,
copy, translate PID-8 through samples/tables/sex-hl7-to-fhir.yaml, format PID-7 dtm-to-iso,
delete a ZBE field, add a segment, steps under ``when:``.
(2) ORU: ``for-each: OBX[*]`` translating OBX-3.1 of 20 OBX through a 1 000-row table
(mappings.tables.synthetic_table_csv), the OBX-3 codes rewritten to codes of that table.
(3) ORU per order: the same translation inside ``for-each: ORDER_OBSERVATION[*]``, plus each
OBX-4 set from its own order's OBR-4.1: what placing the segments in their groups (once per
message, mappings/groups.py) and reading paths inside a group add to (2).

    .venv/bin/python bench/mapping_speed.py [--messages 20000]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.synthetic import adt_message, oru_message  # noqa: E402
from mappings.message import HL7Message  # noqa: E402
from mappings.steps import compile_steps  # noqa: E402
from engine.config.tablefiles import read_table_file  # noqa: E402
from mappings.tables import parse_csv_table, synthetic_table_csv  # noqa: E402

ADT_STEPS = [
    {"set": "MSH-5", "value": "DPI"},
    {"set": "MSH-6", "value": "CABINET"},
    {"copy": "PID-3[2]", "to": "PID-2"},
    {"translate": "PID-8", "table": "sex-hl7-to-fhir", "display-to": "PID-8.2"},
    {"format": "PID-7", "with": "dtm-to-iso"},
    {"delete": "ZBE-9"},
    {"add-segment": "ZAI", "after": "PV1", "fields": {1: "AIGUILLAGE", 2: "normalised"}},
    {"set": "PV1-2", "value": "H", "when": 'PV1-2 == "I"'},
    {"delete": "ZFD[*]", "when": 'MSH-9.2 in ["A01", "A04"] and exists(ZFD)'},
    {"stop": "test patient", "when": 'PID-5.1 == "TEST"'},
]

ORU_STEPS = [
    {"for-each": "OBX[*]", "steps": [
        {"translate": "OBX-3.1", "table": "synthetic", "on-unknown": "error"},
    ]},
]

ORU_GROUP_STEPS = [
    {"for-each": "ORDER_OBSERVATION[*]", "steps": [
        {"for-each": "OBX[*]", "steps": [
            {"translate": "OBX-3.1", "table": "synthetic", "on-unknown": "error"},
            {"set": "OBX-4", "value-from": "OBR-4.1"},
        ]},
    ]},
]


def oru_with_table_codes(n: int) -> str:
    """A 20-OBX ORU whose OBX-3 codes are local codes of the synthetic table."""
    lines = oru_message(n).decode().split("\r")
    out = []
    for line in lines:
        if line.startswith("OBX|"):
            fields = line.split("|")
            index = int(fields[1])
            code = f"L{(n * 37 + index * 101) % 1000:05d}"
            fields[3] = f"{code}^Analyte {index}^L"
            line = "|".join(fields)
        out.append(line)
    return "\r".join(out)


def measure(name: str, program, texts: list[str]) -> None:
    count = len(texts)
    # Warm up once on a copy of the first messages.
    for text in texts[:200]:
        program.run(HL7Message.parse(text))

    # Mapping only: each message is parsed just before its run, outside the clock (as the
    # engine does, so the message is warm in the CPU caches), and only run() is timed.
    run = program.run
    parse = HL7Message.parse
    clock = time.perf_counter_ns
    gc.collect()
    gc.freeze()
    spent = 0
    for text in texts:
        message = parse(text)
        start = clock()
        run(message)
        spent += clock() - start
    mapping = spent / 1e9

    start = time.perf_counter()
    for text in texts:
        HL7Message.parse(text)
    parsing = time.perf_counter() - start

    start = time.perf_counter()
    for text in texts:
        message = parse(text)
        run(message)
        message.to_text()
    whole = time.perf_counter() - start
    gc.unfreeze()
    gc.collect()

    print(f"{name}: {count} messages")
    print(f"  mapping only        {count / mapping:>10,.0f} msgs/s  "
          f"({mapping / count * 1e6:.1f} us/msg)")
    print(f"  parse only          {count / parsing:>10,.0f} msgs/s")
    print(f"  parse + map + write {count / whole:>10,.0f} msgs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} "
          f"{platform.python_version()}), {os.cpu_count()} cores, one used")

    sex = read_table_file(ROOT / "samples/tables/sex-hl7-to-fhir.yaml")
    adt = compile_steps(ADT_STEPS, file="bench-adt", tables={"sex-hl7-to-fhir": sex})
    assert len(adt) == 10
    adt_texts = [adt_message(n).decode() for n in range(args.messages)]
    measure("ADT, 10 steps", adt, adt_texts)

    table = parse_csv_table(synthetic_table_csv(1000), name="synthetic")
    oru = compile_steps(ORU_STEPS, file="bench-oru", tables={"synthetic": table})
    oru_texts = [oru_with_table_codes(n) for n in range(args.messages)]
    measure("ORU, for-each 20 OBX translate, 1 000-row table", oru, oru_texts)

    grouped = compile_steps(ORU_GROUP_STEPS, file="bench-oru-groups",
                            tables={"synthetic": table})
    measure("ORU per order: for-each ORDER_OBSERVATION, 20 OBX translate + set", grouped,
            oru_texts)


if __name__ == "__main__":
    main()
