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
  from the delivery's row, unless the journal holds it (stores written before this rule).

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
    """The QUEUED line of each delivery that the journal does not hold."""
    held = {(line["delivery_id"], line["at"]) for line in written
            if line["delivery_id"] is not None and line["status"] == st.QUEUED}
    return [_line(message, d["id"], st.QUEUED, d["created_at"], d["destination"])
            for d in deliveries if (d["id"], d["created_at"]) not in held]


def lines(message: Mapping[str, Any], deliveries: list[Mapping[str, Any]],
          written: list[Mapping[str, Any]]) -> list[dict]:
    """The whole journal of ``message``: ``written`` (rows of the journal table, in id order,
    which they keep) with the implied lines merged in by time. At the same instant an implied
    RECEIVED comes before the message's written lines, and an implied QUEUED after them and
    before its delivery's written lines."""
    own = [line for line in written if line["delivery_id"] is None]
    pending = sorted(implied_message_lines(message, own)
                     + implied_delivery_lines(message, deliveries, written), key=_rank(0))
    out: list[dict] = []
    for line in written:
        key = _rank(1)(line)
        while pending and _rank(0)(pending[0]) < key:
            out.append(pending.pop(0))
        out.append(dict(line))
    return out + pending


def _rank(written: int) -> Any:
    """Sort key of a line: its time, then message lines before delivery lines, implied
    (``written`` 0) before written (1) of the same kind."""
    return lambda line: (line["at"], 2 * (line["delivery_id"] is not None) + written)


def _line(message: Mapping[str, Any], delivery_id: int | None, status: str, at: float,
          detail: str | None) -> dict:
    """A journal line that is not a row: the same keys, ``id`` None."""
    return {"id": None, "message_id": message["id"], "delivery_id": delivery_id,
            "status": status, "at": at, "detail": detail}
