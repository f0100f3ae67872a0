"""
When a lane reads its queue (at its poll, a little after a wake, and, while it is busy, not
more often than its read gap allows), and how much at most.

Every read of a lane's queue, and every write of the outcomes of what it read, costs the
store far more than one more delivery in it does (figures: bench/README.md). A busy lane
that read again as soon as its outcomes were committed would read, send and record a few
deliveries at a time; spacing its reads lets the work queued meanwhile go in one read, one
send of a batch and one write of outcomes. A lane that has a backlog (its last read was cut
at its limits) reads on at once: spacing would only slow it.

How far apart depends on how much the last read found. A lane that finds a few deliveries
per read keeps the short gap (its work waits little). One that finds many (:data:`BUSY_READ`
or more) is busy enough that what each read, each flush of a file batch and each write of
outcomes costs weighs on every delivery, and on the intake sharing its process: it waits the
longer :data:`BUSY_READ_GAP`, so that each carries several times more deliveries; once its
reads find few again, the short gap is back.

Pure: no clock, no store; the lane passes the times in.

test-case-name: tests.delivery.test_cadence
"""
from __future__ import annotations

FETCH_BATCH = 500  # deliveries one read may bring
# Deliveries handed at once to a destination that sends batches: what a busy lane reads in
# its gap, so that each of its reads goes out as one batch.
SEND_BATCH = 128
# Payload bytes one read may bring (and so a lane may hold): what a lane keeps in memory is
# bounded by size as well as by count, whatever the size of its messages.
FETCH_BYTES = 8 * 1024 * 1024
POLL_INTERVAL = 1.0  # seconds between two reads of a lane that nobody wakes
# How long an idle lane that is told of new work waits before reading its queue: the
# deliveries queued meanwhile are read, sent (one flush for a file batch) and recorded
# together instead of one small batch per group commit of the intake.
GATHER = 0.005
# The shortest time between the starts of two reads of a busy lane (its last read found
# work, and all of its due work).
READ_GAP = 0.02
# A read that finds at least BUSY_READ deliveries makes the next gap BUSY_READ_GAP.
BUSY_READ = 32
BUSY_READ_GAP = 0.05
NEVER = float("-inf")  # the start of a read that never happened, or that found nothing


def read_wait(backlog: bool, last_read_at: float, read_gap: float, now: float) -> float:
    """Seconds before a lane may read its queue again (0 or less: at once).

    ``backlog``: its last read left due work unread; ``last_read_at``: when its last read
    that found work started (:data:`NEVER` if none did)."""
    if backlog:
        return 0.0
    return last_read_at + read_gap - now


def read_gap(found: int, quiet_gap: float, busy_gap: float, busy_read: int = BUSY_READ) -> float:
    """The shortest time between the start of a read that found ``found`` deliveries (and
    left none due unread) and the start of the next: ``busy_gap`` from ``busy_read`` on,
    else ``quiet_gap``."""
    return busy_gap if found >= busy_read else quiet_gap
