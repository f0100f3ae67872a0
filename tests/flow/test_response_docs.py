"""
The acknowledgements docs/channels.md shows are the ones the engine sends.

A ``<!-- doctest: ack example=NAME -->`` marker before a ```hl7 block says: load configuration
NAME of the page (as tests/test_docs.py writes it), give that message to the real intake of its
only channel, with a slow plan's decision made at once in place of the decider, and the next
```text block is the ACK, segment for segment. MSH-7 (the time of the answer) and MSH-10 (the
id of the stored message) are taken from the page, since neither can be predicted.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.internet import defer

from engine.flow.decision import decide
from engine.app import channel_plan, load_config
from engine.flow.intake import Intake
from engine.store.records import IngestResult
from tests.test_docs import ALL_EXAMPLES, DOCS, blocks, shown, write_example

_MARKER = re.compile(r"<!-- doctest: ack example=([\w-]+) -->\s*\n```hl7\n")


class StoreAnswering:
    """``ingest`` only: every record committed at once, as ``status`` says (RECEIVED)."""

    def __init__(self) -> None:
        self.records: list = []

    def ingest(self, record, then=None) -> defer.Deferred | None:
        self.records.append(record)
        result = IngestResult(len(self.records), record.status)
        if then is None:
            return defer.succeed(result)
        then(True, result)
        return None


class DecideNow:
    """The decider's ``submit``, running the real decision at once."""

    def __init__(self, plans: dict) -> None:
        self.plans = plans

    def submit(self, channel: str, message) -> defer.Deferred:
        return defer.succeed(decide(self.plans[channel], message))

    def holds(self, channel: str) -> bool:
        return False


class Untold:
    def add(self, channel: str, deliveries) -> None:
        """The lanes are not running here."""


def cases() -> list[tuple[str, str, str, str]]:
    """(where, example name, message, expected ACK) for every marker of every page."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        page_blocks = blocks(page)
        for match in _MARKER.finditer(text):
            index = next(i for i, b in enumerate(page_blocks) if b.start >= match.start())
            message, answer = page_blocks[index], page_blocks[index + 1]
            assert answer.language == "text", f"{page.name}:{message.line}: no ```text after"
            found.append((f"{page.name}:{message.line}", match.group(1), message.text,
                          answer.text))
    return found


CASES = cases()


def test_the_pages_show_acks() -> None:
    assert any(name == "response" for _, name, _, _ in CASES)


@pytest.mark.parametrize("where, name, message, expected", CASES, ids=[c[0] for c in CASES])
def test_documented_ack(where: str, name: str, message: str, expected: str,
                        tmp_path: Path) -> None:
    key = next(k for k in ALL_EXAMPLES if k.endswith(f":{name}"))
    (channel,) = load_config(write_example(ALL_EXAMPLES[key], tmp_path)).channels
    plans = {channel.name: channel_plan(channel)}
    intake = Intake(StoreAnswering(), plans, DecideNow(plans), Untold())
    payload = message.strip("\n").replace("\n", "\r").encode("utf-8") + b"\r"

    answered: list = []
    intake.receive(channel.name, payload, "doc").addBoth(answered.append)

    (ack,) = answered
    got = shown(ack.decode("utf-8"), tmp_path).rstrip("\r").split("\r")
    want = expected.strip("\n").split("\n")
    for lines in (got, want):
        fields = lines[0].split("|")
        fields[6] = fields[9] = "-"
        lines[0] = "|".join(fields)
    assert got == want, f"{where}: the engine answers\n" + "\n".join(got)
