"""
``aiguillage consent``: record, withdraw and show a patient's opposition to sharing.

The commands open the store directly (blocking: CLI only), like ``identity``; each change is
one transaction, kept in the history with the operator's name as its cause
(``operator:<name>``). ``show`` covers every identifier of the person the identity index
knows as holding the one given.

test-case-name: tests.cli.test_consent
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from engine.cli.main import EXIT_FAILED, _database, _load, config_option, main

patient_option = click.option("--patient", required=True, metavar="'VALUE^^^&OID&ISO'",
                              help="the patient's identifier, as a CX")
scope_option = click.option("--scope", default="shared-record", show_default=True,
                            help="what is opposed")
operator_option = click.option("--operator", required=True, envvar="AIGUILLAGE_OPERATOR",
                               help="who records it (kept in the history); "
                                    "or AIGUILLAGE_OPERATOR")


@main.group()
def consent() -> None:
    """Patients' oppositions to sharing: oppose, withdraw, show."""


def _key(patient: str) -> tuple[str, str]:
    from engine.consent.patient import PatientIdentifierError, parse_identifier

    try:
        return parse_identifier(patient)
    except PatientIdentifierError as error:
        raise click.BadParameter(str(error), param_hint="'--patient'") from None


@consent.command("oppose")
@config_option
@patient_option
@scope_option
@click.option("--reason", help="why, as the patient or the operator said it")
@operator_option
def oppose(config_path: str, patient: str, scope: str, reason: str | None,
           operator: str) -> None:
    """Record the patient's opposition: no route to the shared record serves them."""
    from engine.store.consent import ConsentError, oppose as record

    domain, value = _key(patient)
    engine = _database(_load(config_path, lenient=True))
    try:
        with engine.begin() as conn:  # transaction boundary: one operator decision
            opposition, new = record(conn, domain, value, scope, f"operator:{operator}", reason)
    except ConsentError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_FAILED)
    if new:
        click.echo(f"{opposition.patient}: opposed to {scope} (opposition {opposition.id})")
    else:
        click.echo(f"{opposition.patient}: already opposed to {scope} since "
                   f"{_utc(opposition.since)} ({opposition.cause}); nothing changed")


@consent.command("withdraw")
@config_option
@patient_option
@scope_option
@operator_option
def withdraw(config_path: str, patient: str, scope: str, operator: str) -> None:
    """Withdraw the patient's opposition (kept in the history). Exit 1 when none is open."""
    from engine.store.consent import withdraw as record

    domain, value = _key(patient)
    engine = _database(_load(config_path, lenient=True))
    with engine.begin() as conn:  # transaction boundary: one operator decision
        withdrawn = record(conn, domain, value, scope, f"operator:{operator}")
    if withdrawn is None:
        click.echo(f"{patient}: no open opposition to {scope}; nothing withdrawn", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"{withdrawn.patient}: opposition {withdrawn.id} to {scope} withdrawn")


@consent.command("show")
@config_option
@patient_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def show(config_path: str, patient: str, as_json: bool) -> None:
    """The patient's oppositions, open and withdrawn, oldest first, under any identifier of
    the person the identity index knows."""
    from engine.consent.lookup import history_in

    key = _key(patient)
    with _database(_load(config_path, lenient=True)).connect() as conn:
        found = history_in(conn, [key])
    if as_json:
        click.echo(json.dumps([_entry(o) for o in found], indent=2))
        return
    if not found:
        click.echo(f"{patient}: no opposition recorded")
        return
    _table(found)


def _entry(opposition: Any) -> dict:
    return {**opposition.__dict__, "patient": opposition.patient, "open": opposition.open}


def _table(found: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "patient", "scope", "since", "cause", "reason", "withdrawn",
                  box=None, show_edge=False)
    for o in found:
        withdrawn = f"{_utc(o.withdrawn_at)} ({o.withdrawn_cause})" if not o.open else "open"
        table.add_row(str(o.id), o.patient, o.scope, _utc(o.since), o.cause, o.reason or "",
                      withdrawn)
    Console(width=200, soft_wrap=True).print(table)


def _utc(seconds: float | None) -> str:
    from datetime import datetime, timezone

    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
