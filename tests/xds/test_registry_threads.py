"""RegistryThreads hands the answers of a group to the reactor in one callFromThread."""
from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine

from xds.registry.threads import RegistryThreads


class HeldReactor:
    """Collects callFromThread calls; runs them only when told (the reactor thread)."""

    def __init__(self):
        self.calls: list = []
        self._lock = threading.Lock()

    def callFromThread(self, function, *args):
        with self._lock:
            self.calls.append((function, args))

    def run_calls(self) -> int:
        with self._lock:
            calls, self.calls = self.calls, []
        for function, args in calls:
            function(*args)
        return len(calls)


def wait_for(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_group_s_answers_take_one_hand_off(tmp_path):
    """If four submissions are committed while the reactor has not yet run the first hand-off,
    then one callFromThread fires them all, results and errors each to its own Deferred; the
    next answer schedules a hand-off of its own."""
    reactor = HeldReactor()
    threads = RegistryThreads(create_engine(f"sqlite:///{tmp_path / 'r.db'}"), reactor)
    threads.start()
    try:
        release = threading.Event()
        results: dict[str, object] = {}

        def keep(name):
            return lambda value: results.__setitem__(name, value)

        def failing(conn):
            raise ValueError("refused")

        threads.write(lambda conn: release.wait(10) and "held").addCallback(keep("held"))
        for name in ("a", "b"):
            threads.write(lambda conn, name=name: name).addCallback(keep(name))
        threads.write(failing).addErrback(lambda failure: results.__setitem__(
            "error", failure.value.args[0]))
        release.set()
        wait_for(lambda: len(threads._answers) == 4)
        assert reactor.run_calls() == 1
        assert results == {"held": "held", "a": "a", "b": "b", "error": "refused"}
        threads.write(lambda conn: "later").addCallback(keep("later"))
        wait_for(lambda: len(reactor.calls) == 1)
        assert reactor.run_calls() == 1
        assert results["later"] == "later"
    finally:
        threads.writer.stop(10)
        threads._pool.stop()
