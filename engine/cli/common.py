"""
What every ``aiguillage`` command shares: the ``--config`` option, loading and checking the
configuration, opening the store for reading, and the exit codes.

test-case-name: tests.cli.test_main
"""
from __future__ import annotations

import sys
from typing import Any

import click

from engine.config.loader import ConfigError
from engine.config.settings import EngineConfig

DEFAULT_CONFIG = "config/engine.yaml"
EXIT_FAILED, EXIT_CONFIG, EXIT_UNREACHABLE = 1, 2, 3

config_option = click.option("--config", "config_path", default=DEFAULT_CONFIG,
                             show_default=True, type=click.Path(dir_okay=False),
                             help="the engine's YAML file")


def _load(config_path: str, *, connectors: bool = False, lenient: bool = False,
          needed: str | None = None) -> EngineConfig:
    """Load and validate the configuration; with ``connectors``, build them too (check-config
    and run) so that their own checks are reported here, as configuration errors.

    ``lenient`` is for the commands that run no channel (status, messages) or one (``needed``,
    test-channel): another channel file with problems is left out with a warning rather than
    stopping them.
    """
    from engine.app import check_connectors, load_config

    try:
        config = load_config(config_path, lenient=lenient)
    except ConfigError as error:
        click.echo(f"configuration errors ({len(error.problems)}):", err=True)
        click.echo(str(error), err=True)
        sys.exit(EXIT_CONFIG)
    for broken in config.broken:
        if needed is not None and broken.name == needed:
            click.echo(f"configuration errors ({len(broken.problems)}):", err=True)
            click.echo("\n".join(map(str, broken.problems)), err=True)
            sys.exit(EXIT_CONFIG)
    for broken in config.broken:
        named = f" (channel {broken.name})" if broken.name else ""
        click.echo(f"warning: {broken.file}{named} is left out: "
                   f"{len(broken.problems)} configuration error(s):", err=True)
        click.echo("\n".join(f"  {problem}" for problem in broken.problems), err=True)
    if connectors:
        from twisted.internet import reactor

        problems = check_connectors(config, reactor)
        if problems:
            click.echo(f"configuration errors ({len(problems)}):", err=True)
            click.echo("\n".join(problems), err=True)
            sys.exit(EXIT_CONFIG)
    return config


def _database(config: EngineConfig) -> Any:
    """An SQLAlchemy engine on the configured store, its schema checked (blocking: CLI only)."""
    from engine.store import migrate
    from engine.store.store import make_engine

    missing = _missing_sqlite_file(config.store.url)
    if missing is not None:
        click.echo(f"store {config.store.url}: the database file {missing} does not exist; "
                   "start the engine or run `aiguillage db upgrade` to create it", err=True)
        sys.exit(EXIT_UNREACHABLE)
    engine = make_engine(config.store.url)
    try:
        migrate.ensure_current(engine, create_if_empty=False)
    except migrate.SchemaOutOfDate as error:
        click.echo(f"store {config.store.url}: {error}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except Exception as error:
        click.echo(f"store {config.store.url} cannot be read: {error}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    return engine


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite store whose file is absent, else None.

    Connecting would create the file (and make_engine its folder): a reading command must
    report the store missing, not leave an empty one behind at a mistyped path.
    """
    from pathlib import Path

    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if Path(parsed.database).exists() else parsed.database
