"""
The engine's side of the decision worker processes: a few children
(:mod:`engine.workers.decide_child`), each deciding one message at a time.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its processes dies, the whole
pool breaks and every decision under way fails, so nobody knows which message killed it. Here
each child has its own pipe and a thread of the engine that sends it a job and waits for the
answer (a blocking read, which holds no interpreter lock): a child that dies ends the read of
the one message it was deciding. That message is decided again in a new child, up to
:data:`MAX_CRASHES` times; then it is an ERROR naming how the process ended, so that a step
that kills its process cannot loop forever.

Children are started when first needed, with the ``spawn`` method (never ``fork``: the engine
runs threads), and build their plans from the configuration file. :meth:`DecisionProcesses.
refresh` (a reload) makes each child end and a fresh one start before its next job: the new
plans, and the steps' modules imported again. What the decider keeps (one decision under way
per channel, commits in submission order) is the decider's: this pool only answers
``decide(channel, message)`` with a Deferred.

test-case-name: tests.workers.test_decide_pool
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from collections import deque
from typing import Any, Callable

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from engine import status as st
from engine.store.records import Decision
from engine.workers.decide_child import serve
from engine.workers.plan import usable_cores

log = logging.getLogger(__name__)

MAX_CRASHES = 3  # a message whose decision killed this many children is an ERROR
STOP_TIMEOUT = 10.0  # seconds a child is given to end before it is killed


def default_processes(cores: int | None = None) -> int:
    """Half the usable cores, at least one, at most four: the other half answers."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(4, cores // 2))


class Unavailable(Exception):
    """The child has no plan for this channel (or could not load the configuration)."""


class _Child:
    """One worker process and its pipe; used by one waiting thread at a time."""

    def __init__(self, context: Any, build_plans: Callable, config_path: str):
        self._context = context
        self._build_plans = build_plans
        self._config_path = config_path
        self.process: Any = None
        self.connection: Any = None
        self.generation = -1
        self.crashes = 0  # times it died deciding a message

    def ask(self, job: tuple, generation: int) -> tuple:
        """In a thread: the child's answer to ``job``, after starting it again if it is
        dead or stale; raises :class:`ChildDied` when it died at each of MAX_CRASHES tries."""
        ends: list[str] = []
        while len(ends) < MAX_CRASHES:
            self._ensure(generation)
            try:
                self.connection.send(job)
                return self.connection.recv()
            except (EOFError, OSError):
                ends.append(self.end())
                self.crashes += 1
                log.warning("a decision worker process ended (%s) deciding message %s of "
                            "channel %s (try %d of %d)", ends[-1], job[1]["message_id"],
                            job[0], len(ends), MAX_CRASHES)
        raise ChildDied(ends)

    def start(self, generation: int) -> None:
        """In a thread: start the child now if it is not running (see ``warm``)."""
        self._ensure(generation)

    def _ensure(self, generation: int) -> None:
        if self.process is not None and self.generation != generation:
            self.end()
        if self.process is None:
            parent, child = self._context.Pipe()
            self.process = self._context.Process(
                target=serve, args=(child, self._build_plans, self._config_path),
                name="aiguillage-decide", daemon=True)
            self.process.start()
            child.close()
            self.connection, self.generation = parent, generation

    def end(self) -> str:
        """Stop the child (asked, then killed); how it ended, for the log."""
        process, connection = self.process, self.connection
        self.process = self.connection = None
        if process is None:
            return "not started"
        try:
            connection.send(None)
        except (OSError, ValueError):
            pass
        process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()
        code = process.exitcode
        return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"


class ChildDied(Exception):
    def __init__(self, ends: list[str]):
        super().__init__(", ".join(ends))
        self.ends = ends


class DecisionProcesses:
    """``processes`` children deciding what :meth:`decide` is given, each message in one.

    ``build_plans(config_path)`` (picklable by reference: a module-level function) builds a
    child's plans; ``reactor`` runs the Deferreds. Thread-safe only from the reactor thread.
    """

    def __init__(self, reactor: Any, processes: int, config_path: str,
                 build_plans: Callable[[str], dict], *, method: str = "spawn"):
        if processes < 1:
            raise ValueError(f"at least one process, not {processes}")
        self._reactor = reactor
        context = multiprocessing.get_context(method)
        self._idle = deque(_Child(context, build_plans, config_path)
                           for _ in range(processes))
        self._all = list(self._idle)
        self._waiting: deque = deque()  # (job, Deferred) waiting for an idle child
        self._threads: ThreadPool | None = None
        self._warming: list[defer.Deferred] = []  # children being started by warm()
        self.generation = 0
        self.size = processes

    @property
    def crashes(self) -> int:
        """How many times a child died deciding a message."""
        return sum(child.crashes for child in self._all)

    def refresh(self) -> None:
        """The plans changed (a reload): each child is replaced before its next job."""
        self.generation += 1

    def decide(self, channel: str, message: Any) -> defer.Deferred:
        """Deferred[Decision] of ``message`` (an InboundMessage) decided in a child; fails
        with :class:`Unavailable` when the child has no plan for ``channel``."""
        fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)
                  if f.name != "header"}  # the intake's MSH object: deciding does not read it
        d: defer.Deferred = defer.Deferred()
        self._waiting.append(((channel, fields), d))
        self._serve()
        return d

    def warm(self) -> None:
        """Start the children now (an engine with such plans starts): the first messages
        do not wait for a process to start and import the steps."""
        while self._idle:
            child = self._idle.popleft()
            started = threads.deferToThreadPool(self._reactor, self._pool(), child.start,
                                                self.generation)
            started.addErrback(lambda f: log.error("starting a decision worker process "
                                                   "failed: %s", f.getErrorMessage()))
            started.addBoth(lambda _, child=child: self._returned(child))
            self._warming.append(started)

    def _serve(self) -> None:
        while self._waiting and self._idle:
            job, d = self._waiting.popleft()
            child = self._idle.popleft()
            asked = threads.deferToThreadPool(self._reactor, self._pool(), child.ask, job,
                                              self.generation)
            asked.addBoth(self._answered, child, job).chainDeferred(d)

    def _returned(self, child: _Child) -> None:
        self._idle.append(child)
        self._reactor.callLater(0, self._serve)

    def _answered(self, answer: Any, child: _Child, job: tuple) -> Any:
        self._returned(child)
        if isinstance(answer, Failure):
            if not answer.check(ChildDied):
                return answer
            ends = answer.value.ends
            log.error("channel %s: deciding message %s ended its worker process %d times "
                      "(%s): stored in ERROR", job[0], job[1]["message_id"], len(ends),
                      ", ".join(ends))
            return Decision(st.ERROR, error=(
                f"deciding it ended the worker process {len(ends)} times ({ends[-1]}): a step "
                "of the channel kills its process (os._exit, a crash in a C extension, "
                "memory); fix the step, then replay the message"))
        kind, value = answer
        if kind != "decided":
            raise Unavailable(value)
        return value

    def _pool(self) -> ThreadPool:
        if self._threads is None:
            self._threads = ThreadPool(minthreads=0, maxthreads=self.size,
                                       name="aiguillage-decide-wait")
            self._threads.start()
        return self._threads

    def stop(self) -> defer.Deferred:
        """End every child (after the decider let the decisions under way finish)."""
        for _, d in self._waiting:
            d.errback(Unavailable("the engine stops"))
        self._waiting.clear()
        children = list(self._all)

        def end_all() -> None:
            for child in children:
                child.end()

        def ended(_: Any) -> defer.Deferred:
            if not any(c.process for c in children):
                return defer.succeed(None)
            return threads.deferToThread(end_all)

        warming, self._warming = self._warming, []
        d = defer.DeferredList(warming).addCallback(ended)
        return d.addBoth(self._stop_threads)

    def _stop_threads(self, result: Any) -> Any:
        if self._threads is not None:
            pool, self._threads = self._threads, None
            pool.stop()
        return result


__all__ = ["DecisionProcesses", "MAX_CRASHES", "Unavailable", "default_processes"]
