"""Tests for engine.filelimit: the limit raised at start, and the watch warning near it."""
from __future__ import annotations

import logging
import subprocess
import sys

from twisted.internet import task

from engine.filelimit import DescriptorWatch, alarm, open_descriptors


def test_alarm_past_the_ratio_only():
    assert alarm(799, 1000) is None
    assert "800 files and sockets open, the process's limit is 1000" in alarm(800, 1000)
    assert alarm(None, 1000) is None and alarm(5000, None) is None


def test_the_watch_warns_near_the_limit_once_per_interval(caplog):
    """If descriptors stay near the limit, then one WARNING per warn_interval, not per check."""
    clock = task.Clock()
    counts = [100, 900, 900, 900, 100, 950]
    watch = DescriptorWatch(clock, count=lambda: counts.pop(0), limit=lambda: 1000,
                            interval=5, warn_interval=60)
    with caplog.at_level(logging.WARNING, logger="engine.filelimit"):
        watch.start()  # 100: quiet
        clock.advance(5)  # 900: warns
        clock.advance(5)  # 900: within the interval, quiet
        clock.advance(5)  # 900
        clock.advance(5)  # 100
        clock.advance(60)  # 950: warns again
    watch.stop()
    assert watch.warnings == 2
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]


def test_open_descriptors_counts_this_process():
    before = open_descriptors()
    with open(__file__, "rb"):
        assert open_descriptors() == before + 1


def test_raise_open_file_limit_lifts_the_soft_limit_to_the_hard_one():
    """If a process starts with a soft limit under its hard one, then it is raised."""
    script = ("import resource\n"
              "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024))\n"
              "from engine.filelimit import raise_open_file_limit\n"
              "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "(256, 1024) (1024, 1024)"
