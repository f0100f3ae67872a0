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

A process takes no more than its **share** of a destination's lanes: their number divided by
the processes sending that destination, rounded up. Those are the holders of its live leases,
this process, and the newcomers: delivery processes whose heartbeat in the ``nodes`` table is
recent and that hold no lease yet. A process holding more than its share (the first to
start took every lane) is told its **surplus**; it stops those lanes after their sends under
way and releases them, and the newcomers take them at their next claim. So the lanes spread
over a node's worker processes and over the nodes. A process whose leases all ran out (it
died, or lost the store) counts for nobody, and once its lanes are taken over it is no
newcomer either: its last heartbeat is older than the newcomers' window by then
(:func:`newcomer_window`), so its lanes are not kept for it.

Lease times are the database's clock on PostgreSQL, so that nodes with drifting clocks still
agree on when a lease ran out; SQLite has no server, the node's clock is the only one.

test-case-name: tests.delivery.test_claims
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import and_, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.nodes import sending_since
from engine.store.schema import delivery_leases as leases

# Newcomers are delivery processes heard of this recently (at most; see newcomer_window):
# three heartbeats of engine.nodes, which is when `status` calls a silent process stale.
NEWCOMER_SECONDS = 15.0

Key = tuple[str, str, int]  # (channel, destination, lane)


@dataclass(frozen=True)
class Claimed:
    """What a claim transaction found: the lanes this owner holds now, and until when."""

    now: float  # the database's time when the claim ran
    held: frozenset[Key]
    lease_until: float
    # held lanes beyond this owner's share: to stop, then release (see the module doc)
    surplus: frozenset[Key] = frozenset()


def database_now(conn: Any) -> float:
    """The database's clock (UNIX seconds) on PostgreSQL, this node's on SQLite."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())"))
                     .scalar_one())
    return time.time()


def claim(conn: Any, owner: str, wanted: Iterable[Key], ttl: float,
          give_up: Iterable[Key] = ()) -> Claimed:
    """Renew ``owner``'s leases among ``wanted``, take the free or expired ones up to its
    share, give up the others it holds and those of ``give_up`` (a surplus handed back,
    still counted in its destination's lanes); one transaction (runs in a store thread)."""
    wanted = frozenset(wanted)
    give_up = frozenset(give_up)
    _ensure_rows(conn, wanted)  # first, a write: on SQLite it takes the write lock now
    now = database_now(conn)
    until = now + ttl
    mine = _held_by(conn, owner)
    for key in mine - (wanted - give_up):  # no longer run here (reloaded away), handed back
        _set(conn, key, None, 0.0, owner_is=owner)
    keep = mine & (wanted - give_up)
    if keep:
        conn.execute(update(leases).where(leases.c.owner == owner).values(lease_until=until))
    shares = _shares(conn, owner, wanted, now, ttl)
    taken, surplus = set(), set()
    for destination, share in shares.items():
        kept = sorted(k for k in keep if k[:2] == destination)
        surplus.update(kept[share:])
        room = share - len(kept)
        if room > 0:
            lanes = frozenset(k for k in wanted - keep - give_up if k[:2] == destination)
            taken.update(key for key in sorted(_claimable(conn, now, lanes))[:room]
                         if _take(conn, key, owner, now, until))
    return Claimed(now, frozenset(keep | taken), until, frozenset(surplus))


def newcomer_window(ttl: float) -> float:
    """How recent a heartbeat makes a process holding no lease a newcomer: at most
    :data:`NEWCOMER_SECONDS`, and half a lease, so that a dead process whose lanes were just
    taken over (at least two thirds of a lease after its last renewal, and so after its last
    heartbeat) is no newcomer."""
    return min(NEWCOMER_SECONDS, ttl / 2)


def _shares(conn: Any, owner: str, wanted: frozenset[Key], now: float,
            ttl: float) -> dict[tuple[str, str], int]:
    """Per destination (channel, destination) of ``wanted``, how many of its lanes this
    owner may hold: its lanes divided by the processes sending it, rounded up."""
    destinations: dict[tuple[str, str], int] = {}
    for key in wanted:
        destinations[key[:2]] = destinations.get(key[:2], 0) + 1
    rows = conn.execute(select(leases.c.channel, leases.c.destination, leases.c.owner,
                               leases.c.lease_until).where(leases.c.owner.is_not(None)))
    live: dict[tuple[str, str], set[str]] = {}
    owners = set()  # every owner named by a row, live or not: no newcomer
    for channel, destination, holder, lease_until in rows:
        owners.add(_process(holder))
        if lease_until >= now:
            live.setdefault((channel, destination), set()).add(_process(holder))
    # processes that beat lately and no lease row names (node/pid, as _process names owners)
    newcomers = sending_since(conn, time.time() - newcomer_window(ttl)) - owners
    me = _process(owner)
    return {destination: math.ceil(count / len(live.get(destination, set()) | newcomers | {me}))
            for destination, count in destinations.items()}


def _process(owner: str) -> str:
    """The ``node/pid`` of a lease owner (engine.delivery.lease.process_owner: node, pid and
    start time), the part the ``nodes`` table's rows name too."""
    return "/".join(owner.split("/")[:2])


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
