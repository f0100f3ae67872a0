"""The fakes stand for the interfaces the supervisor uses, with the same signatures."""
from __future__ import annotations

import inspect

from twisted.internet.interfaces import IProcessTransport, IReactorProcess

from tests.workers.fakes import FakeProcess, FakeProcessReactor


def _parameters(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def test_spawn_process_has_the_interface_signature():
    """If IReactorProcess.spawnProcess changes its parameters, then this fails."""
    assert _parameters(FakeProcessReactor.spawnProcess) == \
        list(IReactorProcess["spawnProcess"].positional)


def test_signal_process_has_the_interface_signature():
    """If IProcessTransport.signalProcess changes its parameters, then this fails."""
    assert _parameters(FakeProcess.signalProcess) == \
        list(IProcessTransport["signalProcess"].positional)
