"""
A message's journal as it is read: the lines written, and the lines its rows imply.

Why some lines are implied rather than written: each journal row is an insert into a table
and its index inside the group commit, and on the hot path (a message decided before its
commit, :class:`engine.store.ops.IngestOp`) three of a message's first lines say nothing its
own rows do not already say. So the writes leave out:

- the RECEIVED line of a message decided before its commit: it is implied at the message's
  ``received_at``, before its first line;
- that message's decision line (TRANSFORMED or FILTERED at ``received_at``) when it has no
  detail: implied from the message's status, when the message has no line of its own at all
  (:func:`engine.store.replay` writes these two lines before it changes the status);
- the QUEUED line of each new delivery (``created_at``, the destination as detail): implied
  from the delivery's row, unless the journal holds it (stores written before this rule);
- the SENT line of a delivery recorded SENT (:class:`engine.store.ops.DeliveryUpdateOp`): its
  row says SENT at ``updated_at`` for good (SENT is final), so the line is implied from the
  row, unless the journal holds it (stores written before this rule). An outcome that finds
  its delivery no longer QUEUED (sent again by a process whose lane another took over) moves
  no row: its line is written, as is every QUEUED (retry) and ERROR line.

A decision into ERROR, a message committed RECEIVED (a slow plan), an unreadable message and a
duplicate are journaled in full, as before. The readers (``messages show``, the HTTP API)
read :func:`lines`, never the table alone.

test-case-name: tests.store.test_history
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from engine import status as st

# First message-level statuses that are written with the message itself: no line is implied
# before them.
WRITTEN_FIRST = frozenset({st.RECEIVED, st.ERROR, st.DUPLICATE})
# What a message decided before its commit can be left in with no line of its own.
IMPLIED_DECISIONS = frozenset({st.TRANSFORMED, st.FILTERED})


def journaled_at_ingest(decision_status: str | None, detail: str | None) -> tuple[bool, bool]:
    """(write the RECEIVED line, write the decision line) for a message inserted RECEIVED
    with a decision in ``decision_status`` (None: not decided yet); see the module doc."""
    if decision_status is None or decision_status not in IMPLIED_DECISIONS:
        return True, decision_status is not None
    return False, detail is not None


def journaled_outcome(status: str, detail: str | None, moves_row: bool) -> bool:
    """Whether a delivery outcome's line is written: not for a SENT without detail that moves
    its row from QUEUED (the row implies it); see the module doc."""
    return not (moves_row and status == st.SENT and detail is None)


def implied_message_lines(message: Mapping[str, Any], written: list[Mapping[str, Any]]
                          ) -> list[dict]:
    """The message-level lines its row implies, given its ``written`` message-level lines
    (delivery_id None) in journal order."""
    received = _line(message, None, st.RECEIVED, message["received_at"], None)
    if not written:
        if message["status"] not in IMPLIED_DECISIONS:
            return []
        return [received, _line(message, None, message["status"], message["received_at"],
                                message.get("error"))]
    if written[0]["status"] in WRITTEN_FIRST:
        return []
    return [received]


def implied_delivery_lines(message: Mapping[str, Any], deliveries: Iterable[Mapping[str, Any]],
                           written: list[Mapping[str, Any]]) -> list[dict]:
    """The QUEUED line of each delivery, and the SENT line of each one sent, that the journal
    does not hold."""
    held = {(line["delivery_id"], line["status"], line["at"]) for line in written
            if line["delivery_id"] is not None and line["status"] in (st.QUEUED, st.SENT)}
    implied = []
    for d in deliveries:
        if (d["id"], st.QUEUED, d["created_at"]) not in held:
            implied.append(_line(message, d["id"], st.QUEUED, d["created_at"], d["destination"]))
        if d.get("status") == st.SENT and (d["id"], st.SENT, d["updated_at"]) not in held:
            implied.append(_line(message, d["id"], st.SENT, d["updated_at"], None))
    return implied


def lines(message: Mapping[str, Any], deliveries: list[Mapping[str, Any]],
          written: list[Mapping[str, Any]]) -> list[dict]:
    """The whole journal of ``message``: ``written`` (rows of the journal table, in id order,
    which they keep) with the implied lines merged in by time. At the same instant an implied
    RECEIVED comes before the message's written lines, an implied QUEUED after them and
    before its delivery's written lines, and an implied SENT (a delivery's last word) after
    every written line."""
    own = [line for line in written if line["delivery_id"] is None]
    pending = sorted(implied_message_lines(message, own)
                     + implied_delivery_lines(message, deliveries, written), key=_implied_rank)
    out: list[dict] = []
    for line in written:
        key = _written_rank(line)
        while pending and _implied_rank(pending[0]) < key:
            out.append(pending.pop(0))
        out.append(dict(line))
    return out + pending


def _written_rank(line: Mapping[str, Any]) -> tuple:
    """Sort key of a written line: its time, message lines (1) before delivery lines (3)."""
    return (line["at"], 3 if line["delivery_id"] is not None else 1)


def _implied_rank(line: Mapping[str, Any]) -> tuple:
    """Sort key of an implied line: before the written lines of its kind at the same time
    (0, 2), an implied SENT after every one (4)."""
    if line["delivery_id"] is None:
        return (line["at"], 0)
    return (line["at"], 4 if line["status"] == st.SENT else 2)


def _line(message: Mapping[str, Any], delivery_id: int | None, status: str, at: float,
          detail: str | None) -> dict:
    """A journal line that is not a row: the same keys, ``id`` None."""
    return {"id": None, "message_id": message["id"], "delivery_id": delivery_id,
            "status": status, "at": at, "detail": detail}
