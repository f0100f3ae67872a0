"""
Which processes ``aiguillage run`` starts: pure decisions from the options and the cores.

The main process always runs intake (it holds the admin listener and the first MLLP listener)
and the supervisor. ``--workers N`` moves delivery into N processes of their own; with none,
delivery stays in the main process. ``--listeners M`` adds M - 1 intake processes sharing the
MLLP ports with the main one (``SO_REUSEPORT``).

test-case-name: tests.workers.test_plan
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

INTAKE, DELIVERY = "intake", "delivery"

RESTART_FIRST = 0.5  # seconds before restarting a child that died
RESTART_MAX = 30.0  # the longest wait between two restarts of a child that keeps dying
STABLE_AFTER = 60.0  # a child that lived this long starts again from RESTART_FIRST


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(cores: int) -> int:
    """Delivery processes when ``--workers`` is not given: one per core beyond the main
    process's, so that every core has one process; none on one core (delivery then stays in
    the main process)."""
    return max(0, cores - 1)


@dataclass(frozen=True)
class ChildSpec:
    """One child process: its name in the logs, its role, and its ``run`` options."""

    name: str
    role: str
    reuse_port: bool


@dataclass(frozen=True)
class ProcessPlan:
    """The main process's roles and its children."""

    main_roles: tuple[str, ...]
    reuse_port: bool  # the MLLP ports are shared by several listener processes
    children: tuple[ChildSpec, ...]


def process_plan(workers: int, listeners: int) -> ProcessPlan:
    """The processes for ``--workers`` and ``--listeners`` (both already validated >= 0, >= 1)."""
    shared = listeners > 1
    children = [ChildSpec(f"intake-{i}", INTAKE, True) for i in range(1, listeners)]
    children += [ChildSpec(f"delivery-{i}", DELIVERY, False) for i in range(1, workers + 1)]
    roles = (INTAKE,) if workers else (INTAKE, DELIVERY)
    return ProcessPlan(roles, shared, tuple(children))


def child_arguments(spec: ChildSpec, config_path: str) -> list[str]:
    """The ``aiguillage run`` arguments of a child (after the interpreter)."""
    args = ["-m", "engine.cli.main", "run", "--config", os.path.abspath(config_path),
            "--role", spec.role, "--workers", "0", "--listeners", "1", "--supervised"]
    return args + (["--reuse-port"] if spec.reuse_port else [])


def unshareable_ports(sources: Iterable[tuple[str, str, object]]) -> list[str]:
    """Complaints about MLLP sources that several listener processes cannot share.

    ``sources``: (channel, source type, configured port). Port 0 picks a free port in each
    process, so each would listen on a port of its own.
    """
    return [f"channel {channel}: port 0 cannot be shared by several listener processes; "
            "give the mllp source a fixed port or run with --listeners 1"
            for channel, kind, port in sources if kind == "mllp" and port in (0, "0")]


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a child after ``failures`` quick deaths in a row
    (1 for the first): doubling from :data:`RESTART_FIRST` up to :data:`RESTART_MAX`."""
    return min(RESTART_MAX, RESTART_FIRST * 2 ** max(0, failures - 1))


def run_plan(workers: int | None, listeners: int, role: str | None, reuse_port: bool,
             cores: int) -> ProcessPlan:
    """The processes of one ``aiguillage run``.

    With ``role`` (a process started for one role, by the supervisor or by an operator), that
    process alone, no children. Otherwise :func:`process_plan`, ``workers`` defaulting to
    :func:`default_workers`. ``reuse_port`` shares the MLLP ports in either case.
    """
    if role is not None:
        return ProcessPlan((role,), reuse_port, ())
    count = default_workers(cores) if workers is None else workers
    plan = process_plan(count, listeners)
    return ProcessPlan(plan.main_roles, plan.reuse_port or reuse_port, plan.children)
