"""Tests for engine.delivery.claims on SQLite and PostgreSQL: who holds which lane, renewals,
takeover of expired leases, release, and (PostgreSQL) claims that skip locked lanes."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, text, update

from engine.delivery import claims
from engine.store.schema import delivery_leases, nodes
from tests.store.conftest import db_url, engine  # noqa: F401 (fixtures)

LANES = [("adt", "dpi", n) for n in range(4)]


def claim(engine, owner, wanted=LANES, ttl=30.0):
    with engine.begin() as conn:
        return claims.claim(conn, owner, wanted, ttl)


def owners(engine) -> dict:
    with engine.connect() as conn:
        return {(r["channel"], r["destination"], r["lane"]): r["owner"]
                for r in claims.holders(conn)}


def expire(engine, owner):
    with engine.begin() as conn:
        conn.execute(update(delivery_leases).where(delivery_leases.c.owner == owner)
                     .values(lease_until=time.time() - 1))


def test_first_claim_takes_every_free_lane(engine):
    """If nobody holds the lanes, then the first claim takes them all, until now + ttl."""
    before = time.time()
    result = claim(engine, "a")
    assert result.held == frozenset(LANES)
    assert before + 29 < result.lease_until < time.time() + 31
    assert set(owners(engine).values()) == {"a"}


def test_held_lanes_are_not_taken(engine):
    """If another process holds the lanes, then a claim gets none of them, and the holder's
    next claim renews them (later lease_until)."""
    first = claim(engine, "a")
    assert claim(engine, "b").held == frozenset()
    again = claim(engine, "a")
    assert again.held == frozenset(LANES) and again.lease_until >= first.lease_until
    assert set(owners(engine).values()) == {"a"}


def test_expired_lease_is_taken_over(engine):
    """If a holder stopped renewing (died) and its lease ran out, then another process takes
    its lanes, and the old holder's next claim finds it holds nothing."""
    claim(engine, "a")
    expire(engine, "a")
    assert claim(engine, "b").held == frozenset(LANES)
    assert claim(engine, "a").held == frozenset()
    assert set(owners(engine).values()) == {"b"}


def test_release_lets_another_take_at_once(engine):
    """If a holder releases some lanes (a clean stop, a reload), then another process takes
    exactly those at its next claim, before any lease runs out."""
    claim(engine, "a")
    with engine.begin() as conn:
        assert claims.release(conn, "a", LANES[:2]) == 2
    assert claim(engine, "b").held == frozenset(LANES[:2])
    with engine.begin() as conn:
        assert claims.release(conn, "a") == 2
    assert claim(engine, "b").held == frozenset(LANES)


def test_lanes_no_longer_wanted_are_given_up(engine):
    """If a process stops wanting a lane (its destination was removed), then its claim gives
    that lane up, free for others."""
    claim(engine, "a")
    assert claim(engine, "a", LANES[:1]).held == frozenset(LANES[:1])
    assert owners(engine)[LANES[1]] is None


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_claims_skip_locked_lanes(engine):
    """If two processes claim at the same moment (PostgreSQL), then the second neither waits
    for the first's transaction nor takes its lanes: it gets the others."""
    claim(engine, "setup", LANES)  # the rows exist, then are freed
    with engine.begin() as conn:
        claims.release(conn, "setup")
    with engine.connect() as first:
        with first.begin():
            held = claims.claim(first, "a", LANES[:2], 30.0)
            assert held.held == frozenset(LANES[:2])
            with engine.connect() as second:
                with second.begin():
                    second.execute(text("SET LOCAL lock_timeout = '2s'"))
                    got = claims.claim(second, "b", LANES, 30.0)
            assert got.held == frozenset(LANES[2:])
    assert owners(engine) == {**{k: "a" for k in LANES[:2]}, **{k: "b" for k in LANES[2:]}}


def beat(engine, node: str, pid: int, role: str = "delivery", age: float = 0.0) -> None:
    """A row of the ``nodes`` table: process ``node/pid`` heard of ``age`` seconds ago."""
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(nodes).values(
            process=f"{node}/{pid}/{now:.6f}", name=node, pid=pid, role=role, host="h",
            started_at=now - age, heartbeat_at=now - age, version="test"))


def test_a_newcomer_is_handed_its_share(engine):
    """If a delivery process that holds nothing beats while another holds every lane, then
    the holder's claim names its surplus (the lanes beyond half), which the newcomer cannot
    take until the holder's next claim gives them up; then it takes them."""
    first = claim(engine, "n/1/1.0")
    assert first.held == frozenset(LANES) and first.surplus == frozenset()
    beat(engine, "n", 2)
    named = claim(engine, "n/1/1.0")
    assert named.held == frozenset(LANES) and named.surplus == frozenset(LANES[2:])
    assert claim(engine, "n/2/2.0").held == frozenset()  # still held: stopping
    with engine.begin() as conn:
        given = claims.claim(conn, "n/1/1.0", LANES, 30.0, give_up=LANES[2:])
    assert given.held == frozenset(LANES[:2]) and given.surplus == frozenset()
    assert claim(engine, "n/2/2.0").held == frozenset(LANES[2:])
    again = claim(engine, "n/1/1.0")  # its share held: it takes nothing back
    assert again.held == frozenset(LANES[:2]) and again.surplus == frozenset()


def test_two_processes_starting_together_split_the_lanes(engine):
    """If two delivery processes have beaten and hold nothing, then each claim takes at
    most half of the free lanes: the first takes two, the second the two others."""
    beat(engine, "n", 1)
    beat(engine, "n", 2)
    assert claim(engine, "n/1/1.0").held == frozenset(LANES[:2])
    assert claim(engine, "n/2/2.0").held == frozenset(LANES[2:])


def test_a_dead_holder_counts_for_nobody(engine):
    """If a holder's leases ran out (it died) while its heartbeat is recent, then another
    process takes its lanes beyond its own share of two: the dead one is no sender, and
    once its lanes are taken, no newcomer either (its heartbeat is older than half a lease)."""
    beat(engine, "n", 1)
    beat(engine, "n", 2, age=20.0)  # its last beat, before it died
    claim(engine, "n/1/1.0", LANES[:2])
    claim(engine, "n/2/2.0", LANES[2:])
    expire(engine, "n/2/2.0")
    assert claim(engine, "n/1/1.0").held == frozenset(LANES)
    assert claim(engine, "n/1/1.0").surplus == frozenset()


def test_shares_are_per_destination_and_ignore_other_roles(engine):
    """If a process holds lanes of one destination only, then it is no sender of another's
    lanes, and an intake-only process beating is no newcomer: the other's holder keeps all."""
    other = [("oru", "lab", n) for n in range(2)]
    claim(engine, "n/1/1.0", LANES)
    claim(engine, "n/2/2.0", other)
    beat(engine, "n", 3, role="intake")
    result = claim(engine, "n/1/1.0", LANES)
    assert result.held == frozenset(LANES) and result.surplus == frozenset()
