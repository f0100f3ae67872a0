"""engine.workers.supervisor with a fake process reactor: spawn, signals, restarts, stop."""
from __future__ import annotations

import signal

from engine.workers.child import CHILD_FDS
from engine.workers.plan import RESTART_FIRST, STABLE_AFTER, process_plan
from engine.workers.supervisor import State, Supervisor
from tests.workers.fakes import FakeProcessReactor


def _supervisor(workers=1, listeners=2, stop_timeout=90.0):
    reactor = FakeProcessReactor()
    supervisor = Supervisor(reactor, process_plan(workers, listeners).children, "e.yaml",
                            executable="/py", stop_timeout=stop_timeout)
    supervisor.start()
    return reactor, supervisor


def test_start_spawns_each_child_with_its_arguments():
    """If the supervisor starts, then each child runs `run --role` of its own, with stdin a
    pipe and the logs inherited."""
    reactor, supervisor = _supervisor()
    assert [p.args[0] for p in reactor.spawned] == ["/py", "/py"]
    assert [p.args[p.args.index("--role") + 1] for p in reactor.spawned] == [
        "intake", "delivery"]
    assert all(p.child_fds == CHILD_FDS for p in reactor.spawned)
    assert supervisor.pids() == {"intake-1": 1000, "delivery-1": 1001}


def test_sighup_is_forwarded_to_every_running_child():
    """If the supervisor forwards HUP, then each running child gets it, a dead one not."""
    reactor, supervisor = _supervisor()
    reactor.spawned[0].end(signal=signal.SIGKILL)
    supervisor.signal_all("HUP")
    assert [p.signals for p in reactor.spawned] == [[], ["HUP"]]


def test_a_killed_child_is_restarted_after_a_delay():
    """If a child is SIGKILLed, then it is restarted after RESTART_FIRST, with its role."""
    reactor, supervisor = _supervisor()
    reactor.spawned[1].end(signal=signal.SIGKILL)
    assert supervisor.children["delivery-1"].state is State.WAITING
    reactor.advance(RESTART_FIRST - 0.01)
    assert len(reactor.spawned) == 2
    reactor.advance(0.01)
    assert len(reactor.spawned) == 3 and "delivery" in reactor.spawned[2].args
    assert supervisor.pids()["delivery-1"] == 1002
    assert supervisor.children["delivery-1"].restarts == 1


def test_a_child_that_keeps_dying_waits_longer_each_time():
    """If a child dies at once three times, then the waits are 0.5, 1 and 2 s; once it lived
    STABLE_AFTER seconds, the next death waits 0.5 s again."""
    reactor, supervisor = _supervisor(workers=1, listeners=1)
    waits = []
    for _ in range(3):
        reactor.running()[0].end(code=3)
        waits.append(supervisor.children["delivery-1"].restart_call.getTime() - reactor.seconds())
        reactor.advance(waits[-1])
    assert waits == [RESTART_FIRST, 2 * RESTART_FIRST, 4 * RESTART_FIRST]
    reactor.advance(STABLE_AFTER)
    reactor.running()[0].end(code=1)
    call = supervisor.children["delivery-1"].restart_call
    assert call.getTime() - reactor.seconds() == RESTART_FIRST


def test_stop_terms_every_child_and_fires_when_all_ended():
    """If the supervisor stops, then each child gets TERM, nothing is restarted, and the
    Deferred fires only once the last child has ended."""
    reactor, supervisor = _supervisor()
    stopped = supervisor.stop()
    assert [p.signals for p in reactor.spawned] == [["TERM"], ["TERM"]]
    reactor.spawned[0].end()
    assert not stopped.called
    reactor.spawned[1].end(code=0)
    assert stopped.called
    reactor.advance(100)
    assert len(reactor.spawned) == 2


def test_stop_kills_a_child_that_does_not_stop_in_time():
    """If a child ignores TERM for stop_timeout, then it gets KILL."""
    reactor, supervisor = _supervisor(stop_timeout=10)
    stopped = supervisor.stop()
    reactor.spawned[0].end()
    reactor.advance(10)
    assert reactor.spawned[1].signals == ["TERM", "KILL"]
    reactor.spawned[1].end(signal=signal.SIGKILL)
    assert stopped.called


def test_stop_cancels_a_pending_restart():
    """If a child is waiting for its restart when the supervisor stops, then it is not
    started again and does not hold the stop."""
    reactor, supervisor = _supervisor(workers=1, listeners=1)
    reactor.spawned[0].end(signal=signal.SIGKILL)
    stopped = supervisor.stop()
    assert stopped.called
    reactor.advance(60)
    assert len(reactor.spawned) == 1
