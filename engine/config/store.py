"""
The ``store:`` section of engine.yaml: which database, and how the engine writes to it.

test-case-name: tests.config.test_loader
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from engine.config.schema import Invalid, Problems, Section, Where, at_least, describe, key_position
from engine.config.yamlsource import YAMLMapping
from engine.interfaces import OptionSpec


@dataclass(frozen=True)
class StoreConfig:
    """Where messages are stored; ``url`` is an SQLAlchemy URL, sqlite paths made absolute."""

    url: str
    writer_batch_max: int = 1000
    # SQLite only. "full": a commit survives a power cut (an fsync per group commit);
    # "normal": it survives a crash or kill -9, not a power cut, and costs far less.
    sqlite_synchronous: str = "full"
    lease_ttl: float = 30.0  # a delivery lane's lease, see engine/delivery/lease.py


STORE_SECTION = Section(
    (OptionSpec("url", "str", required=True, help="SQLAlchemy database URL"),
     OptionSpec("writer_batch_max", "int", default=1000, help="most messages per commit"),
     OptionSpec("sqlite_synchronous", "str", default="full", choices=("full", "normal"),
                help="SQLite durability: full survives a power cut, normal a crash"),
     OptionSpec("lease_ttl", "duration", default=30, help="a delivery lane's lease")),
    checks={"writer_batch_max": at_least(1), "lease_ttl": at_least(1)})


def resolve_database_url(url: str, base_dir: str) -> str:
    """``url`` with a relative sqlite file path made absolute against ``base_dir``.

    Other databases' URLs are returned as they are, in-memory sqlite too; raise
    :class:`Invalid` if ``url`` is not ``scheme://...``, or a sqlite URL names a host.
    """
    scheme, separator, rest = url.partition("://")
    is_sqlite = scheme.split("+")[0] == "sqlite"
    if not separator or not scheme or (is_sqlite and rest[:1] not in ("", "/")):
        raise Invalid('expected a database URL like "sqlite:///var/aiguillage.db" or '
                      f'"postgresql+psycopg://user@host/aiguillage", got {describe(url)}')
    if not is_sqlite:
        return url
    database, query_separator, query = rest[1:].partition("?")
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    database = os.path.normpath(os.path.join(base_dir, os.path.expanduser(database)))
    return f"{scheme}:///{database}{query_separator}{query}"


def store_config(root: YAMLMapping, values: dict | None, where: Where,
                 problems: Problems) -> StoreConfig | None:
    """The store settings of engine.yaml's ``store:`` section, the sqlite path made
    absolute; None, with the problem added, when the URL is unusable."""
    if not values or values["url"] is None:
        return None
    raw = root.get("store")
    here = where.child("store", root.key_position("store")).child("url", key_position(raw, "url"))
    try:
        url = resolve_database_url(values["url"], here.base_dir)
    except Invalid as exc:
        problems.add(here, str(exc))
        return None
    return StoreConfig(url=url, **{k: values[k] for k in (
        "writer_batch_max", "sqlite_synchronous", "lease_ttl")})
