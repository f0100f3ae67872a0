"""
The in-memory index service is checked against the Protocol it stands for.
"""
from __future__ import annotations

import inspect

from identity.service import IdentityService, SearchCriteria
from tests.identity.fakes import MemoryIdentityService

OPERATIONS = ["change_identifier", "link", "merge", "person", "register", "search", "unlink",
              "unmerge"]


def protocol_methods() -> dict:
    return {name: member for name, member in vars(IdentityService).items()
            if inspect.isfunction(member) and not name.startswith("_")}


def test_protocol_lists_the_operations():
    """If an operation is added to or removed from the Protocol, then this list is updated."""
    assert sorted(protocol_methods()) == OPERATIONS


def test_fake_has_every_operation_with_the_same_parameters():
    """If the Protocol's signature changes, then the fake fails here, not in a feed test."""
    for name, method in protocol_methods().items():
        fake = getattr(MemoryIdentityService, name)
        expected = list(inspect.signature(method).parameters)
        assert list(inspect.signature(fake).parameters) == expected, name


def test_empty_criteria_ask_nothing():
    """If only domains are given, then the query is still empty (it would list everyone)."""
    assert SearchCriteria().empty() and SearchCriteria(in_domains=()).empty()
    assert not SearchCriteria(family_name="X").empty()
