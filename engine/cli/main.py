"""
The ``aiguillage`` command: run the engine, check its configuration, watch and operate it.

Exit codes: 0 success; 1 the operation failed (a message refused, a replay refused, the engine
stopped on an error); 2 bad usage or configuration (click's own convention); 3 the store or a
peer could not be reached.

Reading commands (status, messages) open the store directly, read-only, so they work whether
or not the engine is running; SQLite's WAL mode lets them read while the engine writes.

test-case-name: tests.cli.test_main
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from engine import status as st
from engine.cli.common import (
    EXIT_CONFIG, EXIT_FAILED, EXIT_UNREACHABLE, _database, _load, config_option)
from engine.cli.run import run
from engine.config.loader import ConfigError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aiguillage")
def main() -> None:
    """Aiguillage: an HL7 v2 / IHE integration engine and message router."""


main.add_command(run)  # in a module of its own: the process model and signals


@main.command("reload")
@config_option
@click.option("--admin", "admin", metavar="HOST:PORT",
              help="the admin listener's address (default: engine.yaml's admin: section)")
@click.option("--timeout", default=120.0, show_default=True,
              help="seconds to wait for the engine's report")
def reload_command(config_path: str, admin: str | None, timeout: float) -> None:
    """Have the running engine reload its channels; print its report.

    Exit 0: reloaded; 1: applied, but a part could not start; 2: the configuration was
    refused (the engine keeps its previous channels); 3: no engine answered.
    """
    from engine.cli.reload import (
        AdminUnknown, EngineUnreachable, admin_address, admin_token, parse_address,
        request_reload)

    hint = "(an engine without an admin listener reloads on SIGHUP: kill -HUP <pid>)"
    try:
        host, port = parse_address(admin) if admin else admin_address(config_path)
    except ValueError as error:  # a bad --admin
        raise click.BadParameter(str(error), param_hint="'--admin'") from None
    except ConfigError as error:
        click.echo(f"configuration errors ({len(error.problems)}):\n{error}", err=True)
        sys.exit(EXIT_CONFIG)
    except AdminUnknown as error:
        click.echo(f"{error} {hint}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    try:
        report = request_reload(host, port, timeout, admin_token(config_path))
    except EngineUnreachable as error:
        click.echo(f"{error}; is the engine running? {hint}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    _print_reload_report(report)


def _print_reload_report(report: dict) -> None:
    from engine.reload.reloader import REFUSED, RELOADED, ReloadReport

    lines = ReloadReport(**report).lines()
    outcome = report["outcome"]
    click.echo("\n".join(lines), err=outcome != RELOADED)
    if outcome == REFUSED:
        sys.exit(EXIT_CONFIG)
    if outcome != RELOADED:
        sys.exit(EXIT_FAILED)


@main.command("check-config")
@config_option
def check_config(config_path: str) -> None:
    """Validate engine.yaml and every channel file; list every problem with file:line."""
    config = _load(config_path, connectors=True)
    names = ", ".join(c.name for c in config.channels) or "none"
    click.echo(f"{config_path}: OK ({len(config.channels)} channel(s): {names})")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str) -> None:
    """Create or migrate the store's schema to this version's newest revision."""
    from engine.store import migrate
    from engine.store.store import make_engine

    config = _load(config_path, lenient=True)
    try:
        before, after = migrate.upgrade(make_engine(config.store.url))
    except Exception as error:
        click.echo(f"store {config.store.url}: upgrade failed: {error}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    click.echo(f"store {config.store.url}: schema {before or 'empty'} -> {after}")


@db.command("check-counts")
@config_option
@click.option("--repair", is_flag=True,
              help="replace the kept counts by the recount (stop the engines first)")
def db_check_counts(config_path: str, repair: bool) -> None:
    """Recount messages and deliveries by scanning, and compare with the kept counts that
    status and /metrics show; exit 1 when they differ (and were not repaired)."""
    from engine.store import counters

    engine = _database(_load(config_path))
    with engine.begin() as conn:  # transaction boundary: the check (and the repair)
        differences = counters.differences(conn)
        for (channel, destination, status_), (kept, found) in sorted(differences.items()):
            click.echo(f"{channel} {destination or '(messages)'} {status_}: kept {kept}, "
                       f"counted {found}")
        if differences and repair:
            counters.repair(conn)
    if not differences:
        click.echo("counts agree with the stored messages and deliveries")
    elif repair:
        click.echo(f"{len(differences)} count(s) repaired")
    else:
        sys.exit(EXIT_FAILED)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(config_path: str, as_json: bool) -> None:
    """Counts per channel and destination, rates over the last minute, which engine process
    holds which delivery lane, and the engine processes on this store (with --json: under
    "nodes", beside the channels); with a shared_record: section, what the built-in XDS.b
    registry holds (under "shared_record")."""
    import time

    from engine.delivery import claims
    from engine.nodes import STALE_AFTER
    from engine.store import queries
    from engine.store.nodes import list_nodes, node_entries
    from engine.cli.views import lease_table, nodes_table, shared_record_table, status_table
    from xds.registry.counts import shared_record_counts

    config = _load(config_path, lenient=True)
    with _database(config).connect() as conn:
        report = queries.status_counts(conn)
        holders = claims.holders(conn)
        processes = node_entries(list_nodes(conn), time.time(), STALE_AFTER)
        shared = shared_record_counts(conn) if config.shared_record is not None else None
    for channel in config.channels:  # configured but silent channels show too
        queries.channel_entry(report, channel.name)
        for destination in channel.destinations:
            queries.destination_entry(report, channel.name, destination.name)
    if as_json:
        extra = {"shared_record": shared} if shared is not None else {}
        click.echo(json.dumps({**report, "nodes": processes, **extra}, indent=2,
                              sort_keys=True))
    else:
        status_table(report)
        if holders:
            lease_table(holders)
        nodes_table(processes)
        if shared is not None:
            shared_record_table(shared, config.shared_record)


@main.group()
def messages() -> None:
    """Inspect and replay stored messages."""


@messages.command("list")
@config_option
@click.option("--channel")
@click.option("--status", "status_", type=click.Choice(st.MESSAGE_STATUSES, case_sensitive=False))
@click.option("--since", help="e.g. 10m, 2h, 1d, or an ISO date/time")
@click.option("--until", help="same forms as --since")
@click.option("--control-id", help="MSH-10")
@click.option("--failed-deliveries", is_flag=True,
              help="only messages with a delivery parked in ERROR (replay candidates)")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def messages_list(config_path: str, channel: str | None, status_: str | None, since: str | None,
                  until: str | None, control_id: str | None, failed_deliveries: bool,
                  limit: int, as_json: bool) -> None:
    """List messages, newest first."""
    from engine.store import queries
    from engine.cli.views import messages_table

    config = _load(config_path, lenient=True)
    window = (_when(since, "--since"), _when(until, "--until"))
    with _database(config).connect() as conn:
        rows = queries.list_messages(conn, channel=channel, status=status_ and status_.upper(),
                                     since=window[0], until=window[1], control_id=control_id,
                                     failed_deliveries=failed_deliveries, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        messages_table(rows)


def _when(text: str | None, option: str) -> float | None:
    """A --since/--until value as UNIX time; a usage error naming the option if unreadable."""
    from engine.cli.views import parse_when

    if not text:
        return None
    try:
        return parse_when(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=f"'{option}'") from None


@messages.command("show")
@config_option
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="write the payload's bytes exactly as received")
def messages_show(config_path: str, message_id: int, raw: bool) -> None:
    """Show one message: fields, payload, deliveries and journal."""
    from engine.store import queries
    from engine.cli.views import message_detail_view

    config = _load(config_path, lenient=True)
    with _database(config).connect() as conn:
        detail = queries.message_detail(conn, message_id)
    if detail is None:
        click.echo(f"message {message_id} does not exist", err=True)
        sys.exit(EXIT_FAILED)
    if raw:
        sys.stdout.buffer.write(detail["raw"])
        return
    message_detail_view(detail)


@messages.command("replay")
@config_option
@click.argument("message_ids", type=int, nargs=-1, required=True)
@click.option("--reprocess", is_flag=True,
              help="run the pipeline again (new deliveries to every destination) instead of "
                   "re-queuing the deliveries parked in ERROR")
def messages_replay(config_path: str, message_ids: tuple[int, ...], reprocess: bool) -> None:
    """Replay messages: re-queue their failed deliveries, or reprocess them."""
    from engine.store.replay import ReplayRefused, replay_message

    config = _load(config_path)
    engine = _database(config)
    withheld = _consent_gate(config, engine)
    failures = 0
    for message_id in message_ids:
        try:
            click.echo(replay_message(engine, message_id, reprocess=reprocess,
                                      withheld=withheld))
        except ReplayRefused as error:
            failures += 1
            click.echo(str(error), err=True)
    sys.exit(EXIT_FAILED if failures else 0)


def _consent_gate(config: Any, engine: Any) -> Any:
    """``withheld(channel, raw)`` for a re-queue: the shared-record deliveries of a message
    or document whose patient opposed sharing since its intake, as the engine would decide
    them (engine.flow.requeue)."""
    from engine.app import channel_plan
    from engine.consent.lookup import StoreConsentLookup
    from engine.flow.requeue import withheld_on_requeue

    lookup = StoreConsentLookup(engine)
    plans = {channel.name: channel_plan(channel, consent_lookup=lookup)
             for channel in config.channels}

    def withheld(channel: str, raw: bytes) -> dict[str, str]:
        plan = plans.get(channel)
        return {} if plan is None else withheld_on_requeue(plan, raw)
    return withheld


@main.command("test-channel")
@config_option
@click.argument("channel")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--verbose", "-v", is_flag=True,
              help="with fixtures: the steps and what they changed, even when they pass")
def test_channel(config_path: str, channel: str, files: tuple[str, ...],
                 verbose: bool) -> None:
    """Run HL7 files or YAML fixtures through CHANNEL, without network or store: each
    step's changes and each destination's output, or PASS/FAIL per fixture. Without FILE,
    the fixtures of fixtures/CHANNEL/ next to the engine's YAML file."""
    from engine.cli.channeltest.command import run_test_channel

    config = _load(config_path, lenient=True, needed=channel)
    sys.exit(run_test_channel(config, channel, files, verbose=verbose))


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2575, show_default=True, type=click.IntRange(1, 65535))
@click.option("--generate", type=click.IntRange(1, 100_000),
              help="send N synthetic ADT/ORU messages")
@click.option("--timeout", default=30.0, show_default=True, help="seconds to wait for each ACK")
@click.option("--tls", is_flag=True, help="connect with TLS")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="print only the summary")
def send(files: tuple[str, ...], host: str, port: int, generate: int | None, timeout: float,
         tls: bool, tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
         quiet: bool) -> None:
    """Send HL7 files (one or more messages each) over MLLP and print each ACK."""
    from engine.cli.send import run_send

    if not files and not generate:
        raise click.UsageError("name at least one FILE, or --generate N")
    tls_options = (tls or tls_ca or tls_cert) and {"ca": tls_ca, "cert": tls_cert, "key": tls_key}
    report = run_send(files, host, port, generate=generate, timeout=timeout,
                      tls=tls_options or None, quiet=quiet)
    click.echo(f"{report.accepted} accepted, {report.refused} refused, "
               f"{report.failed} not answered ({host}:{port})")
    if report.failed:
        sys.exit(EXIT_UNREACHABLE)
    if report.refused:
        sys.exit(EXIT_FAILED)


from engine.cli import identity as _identity_commands  # noqa: E402,F401  registers `identity`
from engine.cli import consent as _consent_commands  # noqa: E402,F401  registers `consent`
from engine.cli import xds as _xds_commands  # noqa: E402,F401  registers `xds`


if __name__ == "__main__":  # pragma: no cover
    # ``python -m engine.cli.main``: the command groups above register on the module
    # engine.cli.main, which this __main__ is not; run that one.
    from engine.cli.main import main as registered

    registered()
