"""
The store side of lane leases: claim, renew and release, each in one short transaction.

These functions run in a store thread (``Store.transact``), never on the reactor. They are
the only coordination between engine processes: several processes, on one node or several,
share one database and agree on who sends which lane through the rows of
``delivery_leases`` alone, with no protocol of their own.

On PostgreSQL the free or expired leases are picked with ``SELECT ... FOR UPDATE SKIP
LOCKED``: two processes claiming at the same moment each get other lanes and neither waits
for the other. The UPDATE that takes a lane repeats the condition (free, expired or already
ours), so a lane can never have two owners, whatever the isolation level. On SQLite one node
owns every lane; the same statements run there, serialised by the database's write lock
(each transaction starts with a write, so it takes that lock at once and waits for it with
the busy timeout instead of failing on upgrade).

Lease times are the database's clock on PostgreSQL, so that nodes with drifting clocks still
agree on when a lease ran out; SQLite has no server, the node's clock is the only one.

test-case-name: tests.delivery.test_claims
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import and_, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.schema import delivery_leases as leases

Key = tuple[str, str, int]  # (channel, destination, lane)


@dataclass(frozen=True)
class Claimed:
    """What a claim transaction found: the lanes this owner holds now, and until when."""

    now: float  # the database's time when the claim ran
    held: frozenset[Key]
    lease_until: float


def database_now(conn: Any) -> float:
    """The database's clock (UNIX seconds) on PostgreSQL, this node's on SQLite."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())"))
                     .scalar_one())
    return time.time()


def claim(conn: Any, owner: str, wanted: Iterable[Key], ttl: float) -> Claimed:
    """Renew ``owner``'s leases among ``wanted``, take the free or expired ones, give up the
    others it holds; one transaction (runs in a store thread)."""
    wanted = frozenset(wanted)
    _ensure_rows(conn, wanted)  # first, a write: on SQLite it takes the write lock now
    now = database_now(conn)
    until = now + ttl
    mine = _held_by(conn, owner)
    for key in mine - wanted:  # a lane this process no longer runs (reloaded away)
        _set(conn, key, None, 0.0, owner_is=owner)
    keep = mine & wanted
    if keep:
        conn.execute(update(leases).where(leases.c.owner == owner).values(lease_until=until))
    taken = {key for key in _claimable(conn, now, wanted - keep)
             if _take(conn, key, owner, now, until)}
    return Claimed(now, frozenset(keep | taken), until)


def release(conn: Any, owner: str, keys: Iterable[Key] | None = None) -> int:
    """Give up ``owner``'s leases (all of them, or those of ``keys``) so that another process
    may take them at once; the number released (runs in a store thread)."""
    if keys is None:
        result = conn.execute(update(leases).where(leases.c.owner == owner)
                              .values(owner=None, lease_until=0.0))
        return result.rowcount
    return sum(_set(conn, key, None, 0.0, owner_is=owner) for key in keys)


def holders(conn: Any) -> list[dict]:
    """Every lease row: channel, destination, lane, owner, lease_until, expired (runs in a
    store thread; for ``aiguillage status`` and the tests)."""
    now = database_now(conn)
    rows = conn.execute(select(leases).order_by(leases.c.channel, leases.c.destination,
                                                leases.c.lane))
    return [dict(row._mapping) | {"expired": row.lease_until < now} for row in rows]


def _ensure_rows(conn: Any, keys: frozenset[Key]) -> None:
    """Create the missing lease rows of ``keys`` (free).

    On PostgreSQL only the missing ones are inserted: inserting over a row that another
    claim has locked would wait for that claim's transaction. On SQLite every one is
    inserted-or-ignored, so that the transaction starts with a write (see the module doc).
    """
    if conn.dialect.name == "postgresql":
        keys = keys - _existing(conn)
        dialect: Any = postgresql
    else:
        dialect = sqlite
    if not keys:
        return
    rows = [{"channel": c, "destination": d, "lane": n, "owner": None, "lease_until": 0.0}
            for c, d, n in sorted(keys)]
    conn.execute(dialect.insert(leases).on_conflict_do_nothing(), rows)


def _existing(conn: Any) -> set[Key]:
    query = select(leases.c.channel, leases.c.destination, leases.c.lane)
    return {(c, d, n) for c, d, n in conn.execute(query)}


def _held_by(conn: Any, owner: str) -> set[Key]:
    query = select(leases.c.channel, leases.c.destination, leases.c.lane) \
        .where(leases.c.owner == owner)
    return {(c, d, n) for c, d, n in conn.execute(query)}


def _claimable(conn: Any, now: float, keys: frozenset[Key]) -> set[Key]:
    """The free or expired lanes among ``keys``; on PostgreSQL locked until the commit, those
    another claim has locked skipped."""
    if not keys:
        return set()
    key = tuple_(leases.c.channel, leases.c.destination, leases.c.lane)
    query = select(leases.c.channel, leases.c.destination, leases.c.lane) \
        .where(_free(now), key.in_(sorted(keys)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return {(c, d, n) for c, d, n in conn.execute(query)}


def _free(now: float) -> Any:
    return or_(leases.c.owner.is_(None), leases.c.lease_until < now)


def _take(conn: Any, key: Key, owner: str, now: float, until: float) -> bool:
    channel, destination, lane = key
    result = conn.execute(
        update(leases)
        .where(leases.c.channel == channel, leases.c.destination == destination,
               leases.c.lane == lane, or_(_free(now), leases.c.owner == owner))
        .values(owner=owner, lease_until=until))
    return result.rowcount == 1


def _set(conn: Any, key: Key, owner: str | None, until: float, *, owner_is: str) -> int:
    channel, destination, lane = key
    result = conn.execute(
        update(leases)
        .where(and_(leases.c.channel == channel, leases.c.destination == destination,
                    leases.c.lane == lane, leases.c.owner == owner_is))
        .values(owner=owner, lease_until=until))
    return result.rowcount
