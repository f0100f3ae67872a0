"""
Operator writes made from the CLI: replaying a message.

Two kinds of replay, as an integration engineer expects from Mirth: re-queue the deliveries
that were parked in ERROR (the message is sent again to those destinations only, the pipeline
is not re-run), or reprocess the message (set back to RECEIVED: the running engine's recovery
scan finds it and decides it anew, queuing one new delivery per destination).
These run in the CLI's process, in their own transaction; the engine finds the work through
its periodic scans.

test-case-name: tests.store.test_history
"""
from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import insert, select, update

from engine import status as st
from engine.store import counters, history
from engine.store.schema import deliveries, journal, messages


class ReplayRefused(ValueError):
    """The message cannot be replayed the way that was asked (unknown, duplicate...)."""


#: ``withheld(channel, raw) -> {destination: why}``: deliveries a re-queue leaves in ERROR.
Withheld = Callable[[str, bytes], dict]


def replay_message(engine: Any, message_id: int, *, reprocess: bool = False,
                   withheld: Withheld | None = None) -> str:
    """Replay one message; return a sentence saying what was done. Blocking: CLI only.

    *withheld*, given the message's channel and bytes, names the parked deliveries that a
    re-queue must leave in ERROR, with why (the CLI's consent check: a patient who opposed
    sharing since); each gets a journal line saying so. A reprocess is decided anew by
    the engine, consent included."""
    with engine.begin() as conn:  # transaction boundary: one replay
        row = conn.execute(select(messages.c.status, messages.c.channel)
                           .where(messages.c.id == message_id)).first()
        if row is None:
            raise ReplayRefused(f"message {message_id} does not exist")
        if row.status == st.DUPLICATE:
            raise ReplayRefused(f"message {message_id} is a duplicate; replay the original")
        if row.status == st.RECEIVED:
            raise ReplayRefused(f"message {message_id} is RECEIVED: its processing is still to "
                                "come, there is nothing to replay yet")
        parked = list(conn.execute(
            select(deliveries.c.id, deliveries.c.destination)
            .where(deliveries.c.message_id == message_id, deliveries.c.status == st.ERROR)))
        if reprocess or (row.status != st.TRANSFORMED):
            return _reprocess(conn, message_id, row.status, row.channel)
        if not parked:
            raise ReplayRefused(
                f"message {message_id} has no delivery in ERROR; use --reprocess to run its "
                "pipeline and deliver it again")
        held = {}
        if withheld is not None:
            raw = conn.execute(select(messages.c.raw).where(messages.c.id == message_id)).scalar()
            held = withheld(row.channel, raw)
        said, queued = _requeue(conn, message_id, parked, row.channel, held)
    if not queued:  # raised once the journal lines saying why are committed
        raise ReplayRefused(said)
    return said


def _reprocess(conn: Any, message_id: int, current: str, channel: str) -> str:
    st.check_transition("message", current, st.RECEIVED)
    now = time.time()
    _write_implied_lines(conn, message_id)
    # only from the status read: another replay may have moved it since (its counts moved)
    moved = conn.execute(update(messages).where(messages.c.id == message_id,
                                                messages.c.status == current)
                         .values(status=st.RECEIVED, error=None)).rowcount
    if moved != 1:
        raise ReplayRefused(f"message {message_id} changed while it was being replayed "
                            "(another replay?); nothing was done")
    conn.execute(insert(journal).values(message_id=message_id, status=st.RECEIVED, at=now,
                                        detail="replay: reprocess requested"))
    tally = counters.Tally()
    tally.moved(channel, counters.MESSAGE, current, st.RECEIVED)
    counters.add_core(conn, tally)
    return f"message {message_id}: set back to RECEIVED; the engine will process it again"


def _write_implied_lines(conn: Any, message_id: int) -> None:
    """Write the message-level lines its row implies (:mod:`engine.store.history`) when it
    has none of its own, before its status changes: once it has, the row no longer says what
    they said. (A message whose first line is written keeps implying the same RECEIVED.)"""
    own = conn.execute(select(journal.c.id).where(journal.c.message_id == message_id,
                                                  journal.c.delivery_id.is_(None)).limit(1))
    if own.first() is not None:
        return
    message = conn.execute(select(messages.c.id, messages.c.status, messages.c.received_at,
                                  messages.c.error).where(messages.c.id == message_id)).one()
    implied = history.implied_message_lines(message._mapping, [])
    if implied:
        conn.execute(insert(journal), [{key: line[key] for key in (
            "message_id", "delivery_id", "status", "at", "detail")} for line in implied])


def _requeue(conn: Any, message_id: int, parked: list, channel: str,
             held: dict[str, str]) -> tuple[str, bool]:
    """Queue *parked* again but those *held* (a journal line each saying why); what was
    done, and whether anything was queued."""
    now = time.time()
    kept = [(delivery_id, name) for delivery_id, name in parked if name in held]
    for delivery_id, destination in kept:
        conn.execute(insert(journal).values(message_id=message_id, delivery_id=delivery_id,
                                            status=st.ERROR, at=now,
                                            detail=f"replay: not queued again: {held[destination]}"))
    parked = [(delivery_id, name) for delivery_id, name in parked if name not in held]
    if not parked:
        reasons = "; ".join(f"{name}: {held[name]}" for name in sorted({n for _, n in kept}))
        return f"message {message_id}: not queued again ({reasons})", False
    tally = counters.Tally()
    for delivery_id, destination in parked:
        tally.moved(channel, destination, st.ERROR, st.QUEUED)
        st.check_transition("delivery", st.ERROR, st.QUEUED)
        moved = conn.execute(update(deliveries).where(deliveries.c.id == delivery_id,
                                                      deliveries.c.status == st.ERROR)
                             .values(status=st.QUEUED, attempts=0, next_attempt_at=now,
                                     updated_at=now)).rowcount
        if moved != 1:  # another replay queued it since it was read (its counts moved)
            raise ReplayRefused(f"delivery {delivery_id} changed while it was being replayed "
                                "(another replay?); nothing was done")
        conn.execute(insert(journal).values(message_id=message_id, delivery_id=delivery_id,
                                            status=st.QUEUED, at=now, detail="replay"))
    counters.add_core(conn, tally)
    names = ", ".join(sorted({name for _, name in parked}))
    held_back = "".join(f"; {name} not: {held[name]}" for name in sorted({n for _, n in kept}))
    return (f"message {message_id}: {len(parked)} delivery(ies) queued again "
            f"({names}){held_back}"), True
