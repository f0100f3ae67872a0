"""``python:`` steps for the tests of decisions in worker processes (not a test module)."""
from __future__ import annotations

import os
import time


def stamp(message) -> None:
    """Write the deciding process's id into PID-5: the test sees where the step ran."""
    message.segment("PID").set(5, f"PROCESS{os.getpid()}")


def busy_20ms(message) -> None:
    """Compute for 20 ms in pure Python (holding the interpreter lock), then stamp."""
    end = time.process_time() + 0.020
    while time.process_time() < end:
        sum(range(200))
    stamp(message)


def exit_process(message) -> None:
    """End the process at once, as a crash in a C extension would."""
    os._exit(3)
