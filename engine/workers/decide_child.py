"""
A decision worker process: builds its channels' plans from the configuration, then decides
the messages its parent sends, one at a time, until told to stop or its parent is gone.

Why a process: a ``python:`` step that computes for 20 ms holds the interpreter lock for
20 ms; in the engine's own process that is 20 ms during which no channel is answered. Here
it holds this process's lock only. Plans hold compiled steps and the callables of
``python:`` steps, which do not pickle: the child builds them itself, with ``build_plans``
(``engine.app.worker_plans``, given by reference), from the configuration file the parent
named; a reload makes the parent start fresh children (:mod:`engine.workers.decide_pool`),
which import the steps' modules again.

The pipe carries plain values: a job is ``(channel, fields of the InboundMessage)``, an
answer ``("decided", Decision)`` or ``("unavailable", why)`` (the channel is not in this
child's plans, or the configuration did not load: the parent decides it in a thread).

test-case-name: tests.workers.test_decide_pool
"""
from __future__ import annotations

import os
import signal
from typing import Any, Callable

WORKER_NICENESS = 10  # below the engine process: the reactor, woken by a socket, runs first


def serve(connection: Any, build_plans: Callable[[str], dict], config_path: str) -> None:
    """The child's main loop (the target of its ``multiprocessing.Process``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the engine, which stops us
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed: a hint only
        pass
    from engine.flow.decision import decide
    from engine.flow.plan import InboundMessage

    try:
        plans, trouble = build_plans(config_path), ""
    except Exception as error:  # the file changed and is broken now: the parent decides
        plans, trouble = {}, f"{type(error).__name__}: {error}"
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        channel, fields = job
        plan = plans.get(channel)
        if plan is None:
            answer: tuple = ("unavailable", trouble or f"channel {channel!r} has no plan in "
                                                       "the worker process")
        else:
            answer = ("decided", decide(plan, InboundMessage(**fields)))
        try:
            connection.send(answer)
        except (EOFError, OSError):
            return
        except Exception as error:  # a value that does not pickle: say so, stay alive
            connection.send(("unavailable", f"{type(error).__name__}: {error}"))
