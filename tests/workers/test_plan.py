"""engine.workers.plan: which processes run, their arguments, restart delays (pure)."""
from __future__ import annotations

from engine.workers.plan import (
    DELIVERY, INTAKE, RESTART_FIRST, RESTART_MAX, ChildSpec, child_arguments, default_workers,
    ProcessPlan, process_plan, restart_delay, run_plan, unshareable_ports)


def test_default_workers_leave_one_core_to_the_main_process():
    """If the node has 1, 2 or 8 cores, then 0, 1 or 7 delivery processes run by default."""
    assert [default_workers(c) for c in (1, 2, 8)] == [0, 1, 7]


def test_without_workers_the_main_process_delivers():
    """If --workers 0 --listeners 1, then one process does everything and nothing is shared."""
    plan = process_plan(0, 1)
    assert (plan.main_roles, plan.reuse_port, plan.children) == ((INTAKE, DELIVERY), False, ())


def test_workers_and_listeners_are_children():
    """If --workers 2 --listeners 3, then the main process only takes in, beside two intake
    children sharing the ports and two delivery children."""
    plan = process_plan(2, 3)
    assert plan.main_roles == (INTAKE,) and plan.reuse_port
    assert [(c.name, c.role, c.reuse_port) for c in plan.children] == [
        ("intake-1", INTAKE, True), ("intake-2", INTAKE, True),
        ("delivery-1", DELIVERY, False), ("delivery-2", DELIVERY, False)]


def test_child_arguments_run_one_supervised_process_of_its_role():
    """If a child is spawned, then it runs `run --role R --supervised` with no children of its
    own, the config as an absolute path, --reuse-port only for shared listeners."""
    args = child_arguments(ChildSpec("intake-1", INTAKE, True), "config/engine.yaml")
    assert args[:3] == ["-m", "engine.cli.main", "run"]
    assert args[4].endswith("/config/engine.yaml") and args[4].startswith("/")
    assert args[5:] == ["--role", "intake", "--workers", "0", "--listeners", "1",
                        "--supervised", "--reuse-port"]
    assert "--reuse-port" not in child_arguments(ChildSpec("d", DELIVERY, False), "e.yaml")


def test_port_zero_cannot_be_shared():
    """If an mllp source listens on port 0, then sharing its port is refused, naming it;
    other source types and fixed ports pass."""
    problems = unshareable_ports([("a", "mllp", 0), ("b", "mllp", 2575), ("c", "file", 0)])
    assert len(problems) == 1 and problems[0].startswith("channel a: port 0")


def test_restart_delay_doubles_up_to_the_maximum():
    """If a child keeps dying, then the waits double from RESTART_FIRST to RESTART_MAX."""
    delays = [restart_delay(n) for n in range(1, 10)]
    assert delays[:3] == [RESTART_FIRST, 2 * RESTART_FIRST, 4 * RESTART_FIRST]
    assert delays[-1] == RESTART_MAX and delays == sorted(delays)


def test_run_plan_defaults_workers_to_the_cores():
    """If --workers is not given on two cores, then one delivery child runs."""
    plan = run_plan(None, 1, None, False, cores=2)
    assert plan.main_roles == (INTAKE,) and [c.role for c in plan.children] == [DELIVERY]
    assert run_plan(None, 1, None, False, cores=1).main_roles == (INTAKE, DELIVERY)


def test_run_plan_with_a_role_is_one_process():
    """If --role is given, then that process runs that role alone, with no children, sharing
    its ports only with --reuse-port."""
    assert run_plan(None, 3, DELIVERY, False, cores=8) == ProcessPlan((DELIVERY,), False, ())
    assert run_plan(4, 1, INTAKE, True, cores=8) == ProcessPlan((INTAKE,), True, ())
