"""
How the identity commands show persons, history and the review queue as text.

Plain lines (no table widths to wrap) so that the output can be read, grepped and shown
in docs/identity.md as it is. Times are UTC.

test-case-name: tests.identity.store.test_cli
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click


def utc(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def traits_line(traits: dict[str, Any]) -> str:
    """``MOREAU Jean-Pierre Louis, born 19620305, M, place 75056`` and the used name, INS."""
    name = traits.get("birth_name") or ""
    if traits.get("used_name"):
        name = f"{traits['used_name']} (born {name})" if name else traits["used_name"]
    parts = [" ".join([name, *traits.get("first_names", [])])]
    if traits.get("birth_date"):
        parts.append(f"born {traits['birth_date']}")
    parts.append(traits.get("sex", "U"))
    if traits.get("birth_place"):
        parts.append(f"place {traits['birth_place']}")
    if traits.get("ins"):
        ins = traits["ins"]
        parts.append(f"INS {ins['matricule']} {ins['status']}")
    return ", ".join(parts)


def person_lines(person: dict[str, Any]) -> None:
    """A person's heading, traits and identifiers."""
    state = person["status"] + (f" into {person['merged_into']}" if person.get("merged_into") else "")
    score = f"  score {person['score']}" if "score" in person else ""
    click.echo(f"person {person['person_id']} ({state}){score}")
    click.echo(f"  {traits_line(person['traits'])}")
    for ident in person["identifiers"]:
        click.echo(f"  id {ident['domain']} {ident['value']}")


def event_line(event: dict[str, Any]) -> str:
    other = f" other {event['other_person_id']}" if event["other_person_id"] is not None else ""
    ident = f" id {event['domain']} {event['value']}" if event["domain"] else ""
    return f"  {utc(event['at'])} {event['kind']} person {event['person_id']}{other}{ident} by {event['cause']}"


def item_line(item: dict[str, Any]) -> str:
    score = "" if item["score"] is None else f" score {item['score']:.1f}"
    candidate = "nobody proposed" if item["candidate_id"] is None else f"may be {item['candidate_id']}"
    return (f"item {item['id']}: person {item['person_id']} {candidate}{score}"
            f" ({item['reasons']}) opened {utc(item['opened_at'])} by {item['cause']}")


def show_person(detail: dict[str, Any]) -> None:
    person_lines(detail)
    click.echo("history:")
    for event in detail["history"]:
        click.echo(event_line(event))
    if detail["review"]:
        click.echo("open review items:")
        for item in detail["review"]:
            click.echo(f"  {item_line(item)}")


def audit_line(entry: dict[str, Any]) -> str:
    """``#3 2026-03-20T09:00:01Z ITI-9 DPI/CABINET from 10.0.0.5:4100 Q1 (T1): OK,
    persons 1; disclosed 1.2.250.1.999.1.2 77`` (the time is when the trail kept it)."""
    persons = ", ".join(entry["persons"]) or "none"
    line = (f"#{entry['id']} {utc(entry['recorded_at'])} {entry['transaction']} "
            f"{entry['requester']}/{entry['facility']} from {entry['peer']} {entry['control_id']}"
            f"{' (' + entry['query_tag'] + ')' if entry['query_tag'] else ''}: {entry['outcome']}, "
            f"persons {persons}")
    if entry["identifiers"]:
        line += "; disclosed " + ", ".join(f"{i['domain']} {i['value']}" for i in entry["identifiers"])
    return line
