"""
The channel fixtures of the repository's configuration (config/fixtures/<channel>/*.yaml), one
test each, named ``<channel>/<case>``: the same check, and the same report on failure, as
``aiguillage test-channel <channel>``. Adding a fixture file adds a test; nothing to edit here.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from engine.app import load_config
from engine.cli.channeltest.fixtures import check_fixture, failure_text, fixture_files, fixture_name
from engine.cli.channeltest.runner import channels_by_name

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "engine.yaml"
FILES = fixture_files(str(CONFIG))


@lru_cache(maxsize=1)
def config():
    """The repository's configuration, loaded once for every fixture (tables included)."""
    return load_config(str(CONFIG))


def test_the_configuration_has_fixtures():
    """If the fixtures folder were moved or emptied, then this fails rather than nothing
    being tested: oru-lab and adt-in have theirs."""
    names = {fixture_name(path).split("/")[0] for path in FILES}
    assert {"oru-lab", "adt-in"} <= names


@pytest.mark.parametrize("path", FILES, ids=[fixture_name(path) for path in FILES])
def test_fixture(path: str) -> None:
    from engine.cli.channeltest.fixtures import FixtureError, load_fixture

    channels = channels_by_name(config())
    try:
        fixture = load_fixture(path, channels)
    except FixtureError as error:
        fixture, refused = None, str(error)
    if fixture is None:  # failed outside the except block: no chained traceback in the report
        pytest.fail(f"the fixture cannot be run:\n{refused}", pytrace=False)
    outcome = check_fixture(fixture, channels[fixture.channel])
    if not outcome.passed:
        pytest.fail(failure_text(outcome), pytrace=False)
