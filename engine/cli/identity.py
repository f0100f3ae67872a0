"""
``aiguillage identity``: search, show and correct the master patient index.

The commands open the store directly (blocking: CLI only), like ``status`` and ``messages``;
every change is one transaction recorded in the index's history with the operator's name
as its cause (``--operator``, or ``AIGUILLAGE_OPERATOR``).

test-case-name: tests.identity.store.test_cli
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from engine.cli.identity_views import audit_line, item_line, person_lines, show_person
from engine.cli.main import EXIT_FAILED, _database, _load, config_option, main

operator_option = click.option("--operator", required=True, envvar="AIGUILLAGE_OPERATOR",
                               help="who decides (recorded in the history); "
                                    "or AIGUILLAGE_OPERATOR")
json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


@main.group()
def identity() -> None:
    """The master patient index: search, show, review, merge, export, audit."""


def _read(config_path: str, query: Callable, *args: Any) -> Any:
    from identity.store import IdentityError

    config = _load(config_path, lenient=True)
    with _database(config).connect() as conn:
        try:
            return query(conn, *args)
        except IdentityError as error:
            click.echo(str(error), err=True)
            sys.exit(EXIT_FAILED)


def _change(config_path: str, operation: Callable, *args: Any) -> Any:
    """Run one operation in one transaction; an IdentityError is reported, nothing written."""
    from identity.store import IdentityError

    config = _load(config_path, lenient=True)
    try:
        with _database(config).begin() as conn:  # transaction boundary: one operator decision
            return operation(conn, *args)
    except IdentityError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_FAILED)


def _traits(name: str | None, first: tuple[str, ...], birth_date: str | None, sex: str) -> Any:
    from identity.model import InvalidTraits, Sex, Traits

    try:
        return Traits(birth_name=name, first_names=first, birth_date=birth_date, sex=Sex(sex))
    except InvalidTraits as error:
        raise click.UsageError(str(error)) from None


@identity.command("search")
@config_option
@click.option("--identifier", nargs=2, metavar="DOMAIN-OID VALUE", help="a local identifier")
@click.option("--name", help="birth or used name")
@click.option("--first", multiple=True, help="first name (repeat for several, in order)")
@click.option("--birth-date", help="YYYYMMDD")
@click.option("--sex", type=click.Choice(["M", "F", "O", "U"]), default="U", show_default=True)
@click.option("--limit", default=10, show_default=True)
@json_option
def search(config_path: str, identifier: tuple[str, str] | None, name: str | None,
           first: tuple[str, ...], birth_date: str | None, sex: str, limit: int, as_json: bool) -> None:
    """Find persons by identifier, or by traits (best match first, with its score)."""
    from identity.store import views

    if identifier:
        found = _read(config_path, views.by_identifier, *identifier)
    elif name:
        found = _read(config_path, views.by_traits, _traits(name, first, birth_date, sex), limit)
    else:
        raise click.UsageError("give --identifier DOMAIN-OID VALUE, or --name (and more traits)")
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for person in found:
        person_lines(person)
    if not found:
        click.echo("no person found")


@identity.command("show")
@config_option
@click.argument("person_id", type=int)
@json_option
def show(config_path: str, person_id: int, as_json: bool) -> None:
    """One person: traits, identifiers, history and open review items."""
    from identity.store import views

    detail = _read(config_path, views.show, person_id)
    if as_json:
        click.echo(json.dumps(detail, indent=2, ensure_ascii=False))
    else:
        show_person(detail)


@identity.group("review")
def review() -> None:
    """The review queue: list, accept, reject, link, unlink."""


@review.command("list")
@config_option
@click.option("--limit", default=50, show_default=True)
@json_option
def review_list(config_path: str, limit: int, as_json: bool) -> None:
    """Open items, oldest first."""
    from identity.store.review import open_items

    items = _read(config_path, open_items, limit)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(item_line(item))
    click.echo(f"{len(items)} open item(s)")


@review.command("accept")
@config_option
@click.argument("item", type=int)
@operator_option
def review_accept(config_path: str, item: int, operator: str) -> None:
    """The pair is one person: merge the incoming person into the candidate."""
    from identity.store import accept, operator_cause

    survivor = _change(config_path, accept, item, operator_cause(operator))
    click.echo(f"item {item} accepted: merged into person {survivor}")


@review.command("reject")
@config_option
@click.argument("item", type=int)
@operator_option
def review_reject(config_path: str, item: int, operator: str) -> None:
    """The pair is two persons: never propose it again."""
    from identity.store import operator_cause, reject

    _change(config_path, reject, item, operator_cause(operator))
    click.echo(f"item {item} rejected: the pair will not be proposed again")


@review.command("link")
@config_option
@click.argument("item", type=int)
@click.argument("person_id", type=int)
@operator_option
def review_link(config_path: str, item: int, person_id: int, operator: str) -> None:
    """The incoming person is PERSON_ID (neither new nor the candidate): merge it there."""
    from identity.store import link_to, operator_cause

    _change(config_path, link_to, item, person_id, operator_cause(operator))
    click.echo(f"item {item} linked: merged into person {person_id}")


@review.command("unlink")
@config_option
@click.argument("domain")
@click.argument("value")
@operator_option
def review_unlink(config_path: str, domain: str, value: str, operator: str) -> None:
    """Detach a local identifier (DOMAIN OID and VALUE) from its person onto a new person."""
    from identity.model import IdentifierDomain, LocalIdentifier
    from identity.store import operator_cause, unlink

    try:
        identifier = LocalIdentifier(IdentifierDomain(domain), value)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    new = _change(config_path, unlink, identifier, operator_cause(operator))
    click.echo(f"identifier {domain} {value} unlinked: now person {new}")


@identity.command("merge")
@config_option
@click.argument("survivor", type=int)
@click.argument("merged", type=int)
@operator_option
def merge(config_path: str, survivor: int, merged: int, operator: str) -> None:
    """Merge person MERGED into SURVIVOR (their identifiers move; undo with unmerge)."""
    from identity.store import merge as merge_persons, operator_cause

    moved = _change(config_path, merge_persons, survivor, merged, operator_cause(operator))
    click.echo(f"person {merged} merged into {survivor}: {len(moved)} identifier(s) moved")


@identity.command("unmerge")
@config_option
@click.argument("merged", type=int)
@operator_option
def unmerge(config_path: str, merged: int, operator: str) -> None:
    """Undo the merge of MERGED: its identifiers go back; the pair is not proposed again."""
    from identity.store import operator_cause, unmerge as unmerge_person

    moved = _change(config_path, unmerge_person, merged, operator_cause(operator))
    click.echo(f"person {merged} unmerged: {len(moved)} identifier(s) moved back")


@identity.command("export")
@config_option
@click.option("--format", "format_", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-",
              help="file to write (default: standard output)")
def export(config_path: str, format_: str, output: Any) -> None:
    """One JSON line per active person (identifiers, traits), then one per open review item."""
    from identity.store import views

    config = _load(config_path, lenient=True)
    with _database(config).connect() as conn:
        for record in views.export(conn):
            output.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


@identity.command("audit")
@config_option
@click.option("--transaction", type=click.Choice(["ITI-8", "ITI-9", "ITI-21"]),
              help="only the feeds (ITI-8), PIX queries (ITI-9) or PDQ queries (ITI-21)")
@click.option("--person", help="only the records naming this person id")
@click.option("--limit", default=50, show_default=True)
@click.option("--before", type=int, help="only records older than this one (the next page)")
@json_option
def audit(config_path: str, transaction: str | None, person: str | None, limit: int,
          before: int | None, as_json: bool) -> None:
    """The audit trail of the index: who asked what, and what was disclosed; newest first."""
    from identity.store.audit import list_audit

    entries = _read(config_path, lambda conn: list_audit(
        conn, transaction=transaction, person=person, limit=limit, before=before))
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for entry in entries:
        click.echo(audit_line(entry))
    click.echo(f"{len(entries)} record(s)")
