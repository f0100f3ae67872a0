"""
The delivery service of one engine process: claims lanes in the store, runs them, renews
their leases, and takes over the lanes of processes that died.

Every lane this process is configured to send (each destination's ``ordering.lanes``) has a
:class:`~engine.delivery.lane.Lane` here, created unleased. Every ``renew_every`` seconds
(more often while some lane is not held, so that a lane left by a dead process is taken over
soon after its lease ran out) one claim transaction (:func:`engine.delivery.claims.claim`)
renews the leases this process holds, takes the free and expired ones, and reports which it
holds; each lane is then told its new deadline, or that its lease is gone. When the store
cannot be reached the leases are not renewed and each lane stops sending at its deadline on
its own (see :mod:`engine.delivery.lease`).

A process holds at most its share of each destination's lanes (:mod:`engine.delivery.claims`):
when another delivery process starts, the claim names the lanes this one holds beyond its
share, and they are handed back: stopped after their sends under way, their outcomes
committed, then released, and replaced by unleased lanes that a later claim may lease again.

Nothing is handed over in memory: :meth:`DeliveryService.wake` only tells the lanes that work
was queued (the flow calls it after a commit); the lanes read it from the store. Work queued
by another process is found by each lane's poll.

test-case-name: tests.delivery.test_service
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from twisted.internet import defer

from engine.delivery import claims
from engine.delivery.lane import POLL_INTERVAL, Lane, LaneKey
from engine.delivery.lease import LeasePolicy
from engine.interfaces import Destination

log = logging.getLogger(__name__)


class DeliveryService:
    """The lanes of one process, and the claims that let them send."""

    def __init__(self, store: Any, clock: Any, owner: str, *,
                 lease: LeasePolicy | None = None, poll_interval: float = POLL_INTERVAL,
                 **lane_options: Any):
        self._store = store
        self._clock = clock
        self.owner = owner
        self.policy = lease or LeasePolicy()
        self._poll_interval = poll_interval
        self._lane_options = lane_options
        self.lanes: dict[LaneKey, Lane] = {}
        self._made: dict[LaneKey, tuple[Destination, Any]] = {}  # what each lane was made of
        self.held: frozenset[LaneKey] = frozenset()
        self._handing_back: set[LaneKey] = set()  # surplus lanes stopping
        self._giving_up: set[LaneKey] = set()  # stopped: the next claim gives them up
        self._claim_call: Any = None
        self._claiming: defer.Deferred | None = None
        self._running = False
        self._store_down = False
        self.claims = 0

    # -- lanes --------------------------------------------------------------------------

    def add_lane(self, key: LaneKey, destination: Destination, retry: Any, *,
                 retry_now: bool = False) -> Lane:
        """Run ``key`` with ``destination`` from the next claim that gets its lease."""
        lane = self._lane(key, destination, retry)
        if retry_now:
            lane.retry_now()
        self._claim_soon()
        return lane

    def _lane(self, key: LaneKey, destination: Destination, retry: Any) -> Lane:
        lane = Lane(key, destination, retry, self._store, self._clock,
                    poll_interval=self._poll_interval, **self._lane_options)
        self.lanes[key] = lane
        self._made[key] = (destination, retry)
        return lane

    @defer.inlineCallbacks
    def remove_lanes(self, keys: Iterable[LaneKey]) -> Any:
        """Stop ``keys`` after their sends under way, wait until their outcomes are committed,
        give up their leases; Deferred. Their queued deliveries stay QUEUED."""
        lanes = [self.lanes.pop(key) for key in list(keys) if key in self.lanes]
        for lane in lanes:
            self._made.pop(lane.key, None)
        yield defer.gatherResults([lane.stop() for lane in lanes])
        yield defer.gatherResults([lane.settled() for lane in lanes])
        self.held = self.held - {lane.key for lane in lanes}
        yield self._release([lane.key for lane in lanes])

    def wake(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """Work was queued for these lanes ((channel, destination, lane) tuples)."""
        for key in keys:
            lane = self.lanes.get(key if isinstance(key, LaneKey) else LaneKey(*key))
            if lane is not None:
                lane.wake()

    # -- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        """Claim lanes now and keep claiming and renewing."""
        self._running = True
        self._claim_soon()

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Stop every lane after its send under way, let its outcomes commit, and give up
        every lease so that another process takes the lanes over at once; Deferred."""
        self._running = False
        if self._claim_call is not None and self._claim_call.active():
            self._claim_call.cancel()
        self._claim_call = None
        if self._claiming is not None:
            yield self._claiming
        lanes = list(self.lanes.values())
        yield defer.gatherResults([lane.stop() for lane in lanes])
        yield defer.gatherResults([lane.settled() for lane in lanes])
        self.held = frozenset()
        yield self._release(None)

    def _release(self, keys: list[LaneKey] | None) -> defer.Deferred:
        wanted = None if keys is None else [_tuple(k) for k in keys]
        d = self._store.transact(claims.release, self.owner, wanted)
        d.addErrback(lambda f: log.warning("giving up the delivery leases failed (they run out "
                                           "on their own): %s", f.getErrorMessage()))
        return d

    # -- claims -------------------------------------------------------------------------

    def _claim_soon(self) -> None:
        if self._running and self._claiming is None:
            self._schedule(0)

    def _schedule(self, delay: float) -> None:
        if self._claim_call is not None and self._claim_call.active():
            if self._claim_call.getTime() <= self._clock.seconds() + delay:
                return
            self._claim_call.cancel()
        self._claim_call = self._clock.callLater(delay, self._claim)

    def _claim(self) -> None:
        """One claim transaction: renew, take over, learn what this process holds."""
        self._claim_call = None
        if not self._running or self._claiming is not None:
            return
        asked_at = self._clock.seconds()
        giving = frozenset(self._giving_up)  # handed back: the claim gives them up
        wanted = [_tuple(key) for key in self.lanes]
        self.claims += 1
        self._claiming = d = self._store.transact(claims.claim, self.owner, wanted,
                                                  self.policy.ttl, [_tuple(k) for k in giving])
        d.addCallbacks(self._claimed, self._claim_failed, callbackArgs=(asked_at, giving))
        d.addBoth(self._claim_done)

    def _claimed(self, result: claims.Claimed, asked_at: float,
                 giving: frozenset[LaneKey] = frozenset()) -> None:
        if self._store_down:
            log.warning("delivery leases renewed again")
            self._store_down = False
        self._giving_up -= giving  # given up by this claim, free for their new holder
        held = frozenset(LaneKey(*key) for key in result.held)
        surplus = frozenset(LaneKey(*key) for key in result.surplus) - self._handing_back
        deadline = self.policy.send_deadline(asked_at)
        for key, lane in list(self.lanes.items()):
            if key in self._handing_back or key in self._giving_up or key in surplus \
                    or key in giving:
                continue  # handed back: renewed until a claim gives it up, then not leased
            if key in held:
                lane.leased(deadline)
            elif key in self.held:
                log.warning("%s: lease lost to another process; this one stops sending it",
                            _name(key))
                lane.unleased()
        gained = held - self.held
        if gained:
            log.info("took %d lane(s): %s", len(gained), ", ".join(sorted(map(_name, gained))))
        self.held = held
        if surplus:
            self._hand_back(surplus).addErrback(
                lambda f: log.error("handing lanes back failed: %s", f.getErrorMessage()))

    @defer.inlineCallbacks
    def _hand_back(self, keys: frozenset[LaneKey]) -> Any:
        """Stop the lanes ``keys`` (held beyond this process's share) after their sends under
        way, wait until their outcomes are committed, put unleased lanes in their place, and
        have the next claim give their leases up (in the transaction that says what this
        process holds: no claim answered meanwhile leases them again here)."""
        log.info("handing back %d lane(s) to another process: %s", len(keys),
                 ", ".join(sorted(map(_name, keys))))
        self._handing_back |= keys
        try:
            lanes = [self.lanes[key] for key in keys if key in self.lanes]
            yield defer.gatherResults([lane.stop() for lane in lanes])
            yield defer.gatherResults([lane.settled() for lane in lanes])
        finally:
            self._handing_back -= keys
        if not self._running:
            return  # stop() releases every lease
        for lane in lanes:
            if self.lanes.get(lane.key) is lane:  # not removed meanwhile
                self._lane(lane.key, *self._made[lane.key])  # unleased, for a later claim
                self._giving_up.add(lane.key)
        self._claim_soon()

    def _claim_failed(self, failure: Any) -> None:
        if not self._store_down:
            log.error("renewing the delivery leases failed: %s; lanes stop sending when their "
                      "lease runs out", failure.getErrorMessage())
            self._store_down = True

    def _claim_done(self, _: Any) -> None:
        self._claiming = None
        if not self._running:
            return
        everything_held = set(self.lanes) <= self.held
        self._schedule(self.policy.renew_every if everything_held
                       else min(self.policy.renew_every, self._poll_interval))

    def stats(self) -> dict:
        """Counters per lane, for the node's stats (``channel/destination/lane``)."""
        return {_name(k): {"sent": lane.sent, "reads": lane.reads,
                           "failed_attempts": lane.failed_attempts, "parked": lane.parked,
                           "state": lane.state.value}
                for k, lane in self.lanes.items()}


def _tuple(key: LaneKey) -> tuple[str, str, int]:
    return (key.channel, key.destination, key.lane)


def _name(key: LaneKey) -> str:
    return f"{key.channel}/{key.destination}/{key.lane}"
