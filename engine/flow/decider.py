"""
Deciding messages of slow plans off the reactor thread, one channel at a time, in order.

A slow plan (a ``python:`` step, structural validation, ``slow: true``:
:attr:`engine.flow.plan.ChannelPlan.slow`) may take milliseconds per message. Decided on the
reactor thread, it would hold every ACK of every channel behind it. Its messages are
committed RECEIVED first (and answered at once in after-commit mode); then each is decided
here, by :func:`engine.flow.decision.decide` in a worker thread, and its decision committed
by the same store write as a fast plan's (:meth:`engine.store.store.Store.record_decision`).

Order: each channel has one queue and at most one decision under way. A decision's commit is
submitted to the group-commit writer, on the reactor thread, before the channel's next
decision starts: the writer commits in submission order and gives delivery ids in that
order, and lanes send by delivery id, so an A08 never overtakes its A01. A decision that
records a patient's opposition to sharing is committed before the channel's next decision
starts, so that the next message for that patient finds it in the store. Channels do not
wait for each other: a small pool of threads serves them all. While a channel has decisions
queued or under way here (a reload just made its plan fast, the recovery scan queued old
messages), the intake sends its new messages here too (:meth:`Decider.holds`), behind them.

A decision thread shares the interpreter lock with the reactor. Pure Python work in it is
made to hand the lock over every ``sys.getswitchinterval()`` seconds; when the decider first
starts its threads (the first message of a slow plan), it lowers that interval to
:data:`SWITCH_INTERVAL`, so that the reactor, woken by a socket, waits a fraction of a
millisecond for the lock rather than five. An engine without slow plans keeps the default:
more frequent hand-overs between the reactor and the writer thread would cost CPU for nothing.

In worker processes: a thread shares the lock, so a ``python:`` step that computes for 20 ms
still keeps the reactor waiting. Given ``processes`` (an
:class:`engine.workers.decide_pool.DecisionProcesses`, from ``decisions: {processes: N}`` in
engine.yaml), the decider sends the messages of slow plans that need nothing of the engine
(:func:`in_process`: no ``identity:`` step, which asks the store) to those processes instead,
with the same order and the same commit; what a process cannot decide (its configuration
has no such channel any more) is decided in a thread.

test-case-name: tests.flow.test_decider
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from typing import Any, Callable

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from engine import status as st
from engine.flow.appack import with_application_ack
from engine.flow.decision import decide
from engine.flow.plan import ChannelPlan, InboundMessage
from engine.flow.queued import QueuedWork
from engine.store.records import DecidedMessage, Decision, IngestResult

log = logging.getLogger(__name__)

THREADS = 2
SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005
WORKER_NICENESS = 10


class DeciderStopped(Exception):
    """The engine stopped before this message was decided; it stays RECEIVED."""


class Decider:
    """Queues of committed RECEIVED messages, one per channel, decided in worker threads.

    ``run_in_thread(function, *args)`` returns a Deferred of ``function(*args)`` run off the
    reactor thread; by default a thread pool of :data:`THREADS` threads of its own.
    """

    def __init__(self, store: Any, reactor: Any, channels: dict[str, ChannelPlan],
                 queued: QueuedWork, *,
                 run_in_thread: Callable[..., defer.Deferred] | None = None,
                 processes: Any = None):
        self._store = store
        self._reactor = reactor
        self.channels = channels
        self._queued = queued
        self._pool: ThreadPool | None = None
        self._run_in_thread = run_in_thread or self._in_pool
        self.processes = processes  # see the module docstring; None: threads only
        self._queues: dict[str, deque] = {}  # channel -> (message, Deferred); absent: idle
        self._busy: set[str] = set()  # channels with a decision under way
        self._known: set[int] = set()  # ids queued or under way, for the recovery scan
        # ids whose decision was committed since the recovery scan's read began: that read
        # may have seen them RECEIVED, and deciding them again would repeat a step's effects
        # (the identity: step changes the index)
        self._settled_in_scan: set[int] = set()
        self._running = False
        self.decided = 0

    def start(self) -> None:
        self._running = True

    @property
    def running(self) -> bool:
        """Whether new messages are taken (between :meth:`start` and :meth:`stop`)."""
        return self._running

    def stop(self) -> defer.Deferred:
        """Stop deciding; what is still queued stays RECEIVED for the next start (its
        Deferreds fail with :class:`DeciderStopped`). Fires once the decisions under way
        have been submitted for commit and the threads have ended."""
        self._running = False
        for channel, queue in self._queues.items():
            while queue:
                message, d = queue.popleft()
                if message is None:  # a settle marker
                    d.callback(None)
                    continue
                self._known.discard(message.message_id)
                d.errback(DeciderStopped(f"message {message.message_id} of channel "
                                         f"{channel} left RECEIVED for the next start"))
        waits = [self.settle(channel) for channel in list(self._busy)]
        return defer.gatherResults(waits).addCallback(self._stop_pool)

    def _stop_pool(self, _: Any) -> Any:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()
        if self.processes is not None:
            return self.processes.stop()
        return None

    def holds(self, channel: str) -> bool:
        """Whether ``channel`` has decisions queued or under way here."""
        return channel in self._queues

    def knows(self, message_id: int) -> bool:
        """Whether message ``message_id`` is queued or being decided here."""
        return message_id in self._known

    def settled_in_scan(self, message_id: int) -> bool:
        """Whether message ``message_id`` was decided since the recovery scan's read began
        (:meth:`scan_started`): that read may have seen it RECEIVED."""
        return message_id in self._settled_in_scan

    def scan_started(self) -> None:
        """The recovery scan begins a read: what is decided from now on is remembered until
        the next one, so that a row the read saw RECEIVED is not decided twice."""
        self._settled_in_scan.clear()

    def _settled(self, message_id: int) -> None:
        self._known.discard(message_id)
        self._settled_in_scan.add(message_id)

    def submit(self, channel: str, message: InboundMessage) -> defer.Deferred:
        """Decide committed ``message`` after those of ``channel`` submitted before it;
        Deferred[Decision] firing once the decision is committed."""
        d: defer.Deferred = defer.Deferred()
        if not self._running:
            d.errback(DeciderStopped(f"message {message.message_id} left RECEIVED"))
            return d
        self._known.add(message.message_id)
        self._queues.setdefault(channel, deque()).append((message, d))
        self._next(channel)
        return d

    def settle(self, channel: str) -> defer.Deferred:
        """Deferred firing once what ``channel`` has queued now has been decided and its
        decisions submitted for commit (a reload waits for this before dropping a plan)."""
        queue = self._queues.get(channel)
        if queue is None:
            return defer.succeed(None)
        if queue:
            last = queue[-1][1]
        else:  # only the decision under way: wait for a marker queued behind it
            last = defer.Deferred()
            queue.append((None, last))
        done: defer.Deferred = defer.Deferred()
        last.addBoth(_passing_to, done)
        return done

    # -- one channel's queue -------------------------------------------------------------

    def _next(self, channel: str) -> None:
        queue = self._queues.get(channel)
        while queue and queue[0][0] is None:  # settle markers: everything before is done
            queue.popleft()[1].callback(None)
        if not queue:
            if channel not in self._busy:
                self._queues.pop(channel, None)
            return
        if channel in self._busy or not self._running:
            return
        message, d = queue.popleft()
        self._busy.add(channel)
        plan = self.channels.get(channel)
        if plan is None:
            decided = defer.succeed(Decision(st.ERROR,
                                             error=f"channel {channel!r} is not loaded"))
        elif self.processes is not None and in_process(plan):
            decided = self.processes.decide(channel, message)
            decided.addErrback(self._in_thread_instead, channel, message)
        else:
            decided = self._run_in_thread(_decide_in_worker, plan, message)
        decided.addErrback(_as_error, channel, message)
        decided.addCallback(self._decided, channel, message, d)

    def _decided(self, decision: Decision, channel: str, message: InboundMessage,
                 d: defer.Deferred) -> None:
        """On the reactor thread: submit the commit, then start the channel's next one.

        The application ACK that an enhanced-mode message asks for is added here, to be
        committed with the decision (:mod:`engine.flow.appack`)."""
        plan = self.channels.get(channel)
        if plan is not None and message.answerable:
            decision = with_application_ack(plan, message.header, decision, message.raw)
        commit = self._store.record_decision(
            DecidedMessage(message.message_id, channel, decision))
        commit.addCallbacks(self._committed, self._commit_failed,
                            callbackArgs=(channel, message, decision),
                            errbackArgs=(message,))
        commit.chainDeferred(d)
        if decision.consent:
            # An opposition read from this message must be in the store before the
            # channel's next message (the patient's ORU) looks for it: wait for the commit.
            commit.addBoth(self._free, channel)
        else:
            self._free(None, channel)

    def _free(self, result: Any, channel: str) -> Any:
        """The channel's decision is submitted (committed, when it changed consent): start
        its next one."""
        self._busy.discard(channel)
        self._next(channel)
        return result

    def _committed(self, result: IngestResult | None, channel: str, message: InboundMessage,
                   decision: Decision) -> Decision:
        self._settled(message.message_id)
        if result is not None:  # None: the message had been decided already
            self.decided += 1
            if result.delivery_ids:
                self._queued.add(channel, decision.deliveries)
        return decision

    def _commit_failed(self, failure: Any, message: InboundMessage) -> Any:
        self._known.discard(message.message_id)  # still RECEIVED: the scan retries it
        log.error("message %d: committing its decision failed: %s", message.message_id,
                  failure.getErrorMessage())
        return failure

    def _in_thread_instead(self, failure: Any, channel: str,
                           message: InboundMessage) -> defer.Deferred:
        """The worker process could not decide it (no plan there: the configuration file
        changed since): decided in a thread, with the engine's plan, like any other."""
        log.warning("message %d of channel %s: decided in a thread, not in a worker process "
                    "(%s)", message.message_id, channel, failure.getErrorMessage())
        plan = self.channels.get(channel)
        if plan is None:
            return defer.succeed(Decision(st.ERROR, error=f"channel {channel!r} is not loaded"))
        return self._run_in_thread(_decide_in_worker, plan, message)

    def _in_pool(self, function: Callable, *args: Any) -> defer.Deferred:
        if self._pool is None:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
            self._pool = ThreadPool(minthreads=0, maxthreads=THREADS, name="aiguillage-decide")
            self._pool.start()
        return threads.deferToThreadPool(self._reactor, self._pool, function, *args)


def in_process(plan: ChannelPlan) -> bool:
    """Whether ``plan`` may be decided in a worker process: a slow plan whose cost is its
    own computing (``python:`` steps, structural validation). One that reads the engine's
    store while deciding stays on the threads: an ``identity:`` step (the patient index), a
    shared-record destination (a patient's opposition to sharing, looked up)."""
    return plan.identity is None and not plan.shares


_worker = threading.local()


def _decide_in_worker(plan: ChannelPlan, message: InboundMessage) -> Decision:
    """:func:`decide`, in a worker thread that yields the CPU to the reactor's.

    On a busy machine a decision thread computing for milliseconds competes with the reactor
    for the CPU as well as for the interpreter lock; its scheduling priority is lowered
    (:data:`WORKER_NICENESS`, Linux: per thread) so that the reactor, woken by a socket, is
    run first."""
    if not getattr(_worker, "niced", False):
        _worker.niced = True
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        except (AttributeError, OSError):  # not Linux, or not allowed: a hint only
            pass
    return decide(plan, message)


def _as_error(failure: Any, channel: str, message: InboundMessage) -> Decision:
    """A decision that could not even run (decide catches what steps raise): ERROR."""
    log.error("deciding message %d of channel %s failed: %s", message.message_id, channel,
              failure.getTraceback())
    return Decision(st.ERROR, error=f"{failure.type.__name__}: {failure.getErrorMessage()}")


def _passing_to(result: Any, waiter: defer.Deferred) -> Any:
    """Fire ``waiter`` and hand ``result`` on unchanged down its own chain."""
    waiter.callback(None)
    return result


__all__ = ["Decider", "DeciderStopped", "in_process", "SWITCH_INTERVAL", "THREADS"]
