"""
How the CLI shows things to a person: tables and details with rich, and time arguments.

Kept apart from the commands so that what is shown can change without touching what is done.

test-case-name: tests.cli.test_main
"""
from __future__ import annotations

import time
from typing import Any
from datetime import datetime

from rich.console import Console
from rich.table import Table

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: float | None = None) -> float:
    """UNIX time for "10m", "2h", "1d" (that long ago) or an ISO date/time (local time)."""
    now = time.time() if now is None else now
    value = text.strip()
    if value and value[-1] in _UNITS and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * _UNITS[value[-1]]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 10m/2h/1d nor an ISO "
                         "date/time like 2026-11-23T09:00") from None


def _when(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def status_table(report: dict, console: Console | None = None) -> None:
    """One row per channel, then one per destination under it."""
    console = console or Console()
    table = Table(title="Aiguillage status (rates: per second over the last minute)")
    for column in ("channel / destination", "received", "filtered", "queued", "sent",
                   "errored", "retrying", "rate"):
        table.add_column(column, justify="left" if column.startswith("channel") else "right")
    for name in sorted(report):
        entry = report[name]
        table.add_row(f"[bold]{name}[/bold]", *_counts(entry, ""))
        for dest in sorted(entry["destinations"]):
            table.add_row(f"  → {dest}", *_counts(entry["destinations"][dest], "retrying"))
    console.print(table)


def shared_record_table(counts: dict, config: Any, console: Console | None = None) -> None:
    """What the built-in XDS.b registry and repository hold, and where they listen."""
    console = console or Console()
    table = Table(title=f"Shared record (XDS.b on {config.host}:{config.port}{config.path})")
    for column in ("document entries", "submission sets", "folders", "documents", "bytes"):
        table.add_column(column, justify="right")
    table.add_row(*(str(counts[key]) for key in (
        "document_entries", "submission_sets", "folders", "documents", "document_bytes")))
    console.print(table)


def lease_table(holders: list[dict], console: Console | None = None) -> None:
    """Which engine process holds which delivery lanes, one row per process (lease rows of
    ``engine.delivery.claims.holders``); lanes nobody holds are counted on a row of their
    own."""
    console = console or Console()
    table = Table(title="Delivery lanes by engine process (node/pid/start)")
    for column in ("process", "lanes", "lease until"):
        table.add_column(column)
    by_owner: dict[str, list[dict]] = {}
    for row in holders:
        free = row["owner"] is None or row["expired"]
        by_owner.setdefault("(nobody)" if free else row["owner"], []).append(row)
    for owner in sorted(by_owner):
        rows = by_owner[owner]
        lanes = ", ".join(f"{r['channel']}/{r['destination']}/{r['lane']}" for r in rows)
        until = "" if owner == "(nobody)" else _when(max(r["lease_until"] for r in rows))
        table.add_row(owner, lanes, until)
    console.print(table)


def _counts(entry: dict, retrying_key: str) -> list[str]:
    errored = entry["errored"]
    return [str(entry["received"]), str(entry["filtered"]), str(entry["queued"]),
            str(entry["sent"]), f"[red]{errored}[/red]" if errored else "0",
            str(entry.get(retrying_key, "")) if retrying_key else "",
            f"{entry['rate']:.1f}/s"]


def nodes_table(entries: list[dict], console: Console | None = None) -> None:
    """One row per engine process on the store; a stale heartbeat in red."""
    console = console or Console()
    table = Table(title="Engine processes (heartbeat: seconds ago)")
    for column in ("node", "pid", "role", "host", "started", "heartbeat", "received", "sent",
                   "version"):
        table.add_column(column)
    for entry in entries:
        age = f"{entry['heartbeat_age']:.0f}s"
        table.add_row(entry["name"], str(entry["pid"]), entry["role"], entry["host"],
                      _when(entry["started_at"]), f"[red]{age} stale[/red]" if entry["stale"]
                      else age, str(entry["received"]), str(entry["sent"]), entry["version"])
    if not entries:
        console.print("no engine process is running on this store")
    else:
        console.print(table)


_MESSAGE_COLUMNS = ("id", "received", "channel", "type", "control id", "status", "error")


def messages_table(rows: list[dict], console: Console | None = None) -> None:
    """A table on a terminal; elsewhere (a pipe, a file) one message a line, tab-separated,
    every value whole, so that a script or ``grep`` never sees a value cut to a width."""
    console = console or Console()
    values = [[str(row["id"]), _when(row["received_at"]), row["channel"],
               row.get("message_type") or "", row.get("control_id") or "", row["status"],
               row.get("error") or ""] for row in rows]
    if not console.is_terminal:
        lines = ["\t".join(_MESSAGE_COLUMNS)] + [
            "\t".join(" ".join(value.split()) for value in line) for line in values]
        console.file.write("\n".join(lines) + "\n")  # as is: rich would expand the tabs
        return
    table = Table()
    for column in _MESSAGE_COLUMNS:
        table.add_column(column)
    for line in values:
        table.add_row(*line[:-1], line[-1][:60])
    console.print(table)


def message_detail_view(detail: dict, console: Console | None = None) -> None:
    """Header fields, the payload one segment a line, deliveries, then the journal."""
    console = console or Console(highlight=False)
    for key in ("id", "channel", "status", "message_type", "control_id", "sender", "peer",
                "charset", "node", "duplicate_of", "error"):
        if detail.get(key) not in (None, ""):
            console.print(f"[bold]{key}[/bold]: {detail[key]}", markup=True)
    console.print(f"[bold]received[/bold]: {_when(detail['received_at'])}")
    console.print("[bold]payload[/bold]:")
    for segment in _decode(detail["raw"], detail.get("charset")).replace("\n", "\r").split("\r"):
        if segment:
            # One segment a line, whatever the width: never wrapped, cropped or emoji-coded,
            # so that it can be copied or grepped whole.
            console.print("  " + segment, markup=False, emoji=False, highlight=False,
                          soft_wrap=True)
    deliveries = Table(title="deliveries")
    for column in ("id", "destination", "lane", "status", "attempts", "updated", "last error"):
        deliveries.add_column(column)
    for d in detail["deliveries"]:
        deliveries.add_row(str(d["id"]), d["destination"], str(d["lane"]), d["status"],
                           str(d["attempts"]), _when(d["updated_at"]), d.get("last_error") or "")
    console.print(deliveries)
    journal = Table(title="journal")
    for column in ("at", "delivery", "status", "detail"):
        journal.add_column(column)
    for line in detail["journal"]:
        journal.add_row(_when(line["at"]), str(line.get("delivery_id") or ""), line["status"],
                        line.get("detail") or "")
    console.print(journal)


def _decode(raw: bytes, charset: str | None) -> str:
    from mllp.header import resolve_codec

    try:
        return raw.decode(resolve_codec(charset or "UNICODE UTF-8"))
    except (LookupError, UnicodeDecodeError):
        return raw.decode("latin-1")
