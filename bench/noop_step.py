"""
``python:`` steps for the benches: one that does nothing, one that takes 20 ms.

``keep``, appended to a mapping, keeps the mapping's outcome but makes the channel's plan slow
(its cost unknown to the engine): its messages are committed RECEIVED, decided in a worker
thread and their decisions committed by a second write (bench/mapping_cost.py --slow).
``busy_20ms`` and ``sleep_20ms`` stand for a costly step, in pure Python (holding the
interpreter lock) or waiting (releasing it), for bench/slow_isolation.py.
"""
import time

STEP_SECONDS = 0.020


def keep(message) -> None:
    """Leave ``message`` as it is."""


def busy_20ms(message) -> None:
    """Compute for 20 ms (pure Python: the worst case for the reactor's share of the lock)."""
    end = time.perf_counter() + STEP_SECONDS
    while time.perf_counter() < end:
        pass


def sleep_20ms(message) -> None:
    """Wait 20 ms (as a step querying a remote service would)."""
    time.sleep(STEP_SECONDS)
