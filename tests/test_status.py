"""Tests for engine.status: the one table of allowed status changes."""
from __future__ import annotations

import pytest

from engine import status as st

ALLOWED = {
    ("message", None, st.RECEIVED), ("message", None, st.ERROR), ("message", None, st.DUPLICATE),
    ("message", st.RECEIVED, st.FILTERED), ("message", st.RECEIVED, st.TRANSFORMED),
    ("message", st.RECEIVED, st.ERROR),
    ("message", st.FILTERED, st.RECEIVED), ("message", st.TRANSFORMED, st.RECEIVED),
    ("message", st.ERROR, st.RECEIVED),
    ("delivery", None, st.QUEUED),
    ("delivery", st.QUEUED, st.QUEUED), ("delivery", st.QUEUED, st.SENT),
    ("delivery", st.QUEUED, st.ERROR),
    ("delivery", st.ERROR, st.QUEUED),
}


def _every_change():
    for kind, statuses in (("message", st.MESSAGE_STATUSES), ("delivery", st.DELIVERY_STATUSES)):
        for current in (None, *statuses):
            for target in statuses:
                yield kind, current, target


@pytest.mark.parametrize("kind,current,target", sorted(ALLOWED, key=str))
def test_allowed_changes_pass(kind, current, target):
    """If a change is in the lifecycle, then check_transition accepts it."""
    st.check_transition(kind, current, target)


@pytest.mark.parametrize("kind,current,target",
                         [c for c in _every_change() if c not in ALLOWED])
def test_every_other_change_refused(kind, current, target):
    """If a change is not in the lifecycle, then check_transition raises IllegalTransition
    naming both statuses."""
    with pytest.raises(st.IllegalTransition) as raised:
        st.check_transition(kind, current, target)
    assert target in str(raised.value) and (current or "new") in str(raised.value)


def test_table_covers_exactly_the_statuses():
    """If a status exists, then the table says what may follow it, and it names no other."""
    keys = {("message", s) for s in (None, *st.MESSAGE_STATUSES)} | {
        ("delivery", s) for s in (None, *st.DELIVERY_STATUSES)}
    assert set(st.TRANSITIONS) == keys
    for (kind, _), targets in st.TRANSITIONS.items():
        known = st.MESSAGE_STATUSES if kind == "message" else st.DELIVERY_STATUSES
        assert targets <= set(known)


def test_duplicate_and_sent_are_final():
    """If a message is DUPLICATE or a delivery SENT, then nothing may follow."""
    assert st.TRANSITIONS[("message", st.DUPLICATE)] == frozenset()
    assert st.TRANSITIONS[("delivery", st.SENT)] == frozenset()


def test_unknown_kind_or_status_refused():
    """If the kind or the current status is unknown, then the change is refused."""
    with pytest.raises(st.IllegalTransition):
        st.check_transition("patient", None, st.RECEIVED)
    with pytest.raises(st.IllegalTransition):
        st.check_transition("message", "LOST", st.RECEIVED)
