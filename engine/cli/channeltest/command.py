"""
``aiguillage test-channel CHANNEL [FILE...]``: messages and fixtures through a channel's
pipeline, on this machine, without network or store (:mod:`engine.cli.channeltest.runner`).

A FILE ending in ``.yaml`` or ``.yml`` is a fixture (:mod:`engine.cli.channeltest.fixtures`): checked,
one PASS or FAIL line, and on failure what differs. Any other FILE holds HL7 messages (one or
several, as ``aiguillage send`` reads them): each is run and its trace and outputs printed.
Without FILE, every fixture of ``fixtures/CHANNEL/`` next to engine.yaml is checked.

Exit codes: 0 every fixture passed (or only messages were run); 1 a fixture failed, or there
was nothing to test; 2 an unknown channel or a fixture that cannot be run as written (the
configuration itself is checked by the CLI before this runs, also 2).

test-case-name: tests.cli.test_channeltest
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

import click

from engine.cli.channeltest.fixtures import (
    FixtureError, check_fixture, fixture_files, load_fixture, outcome_lines)
from engine.cli.channeltest.runner import (
    Line, UnknownChannel, channels_by_name, find_channel, run_lines, run_payload)
from engine.cli.channeltest.scratch import NOTE, ScratchIdentity
from engine.config.settings import EngineConfig

EXIT_FAILED, EXIT_BAD = 1, 2
FIXTURE_SUFFIXES = (".yaml", ".yml")
_STYLES = {"pass": {"fg": "green"}, "fail": {"fg": "red", "bold": True},
           "removed": {"fg": "red"}, "added": {"fg": "green"}, "heading": {"bold": True}}


def echo_lines(lines: Iterable[Line], err: bool = False) -> None:
    """Print ``lines``, coloured; click drops the colours when the output is not a terminal."""
    for line in lines:
        style = _STYLES.get(line.kind)
        click.echo(click.style(line.text, **style) if style else line.text, err=err)


def run_test_channel(config: EngineConfig, name: str, files: tuple[str, ...],
                     echo: Callable[..., None] = echo_lines, verbose: bool = False) -> int:
    """Run ``files`` (or the channel's fixtures) through channel ``name``; the exit code."""
    try:
        channel = find_channel(config, name)
    except UnknownChannel as error:
        echo([Line(str(error), "fail")], err=True)
        return EXIT_BAD
    if not files:
        files = tuple(fixture_files(config.path, name))
        if not files:
            where = os.path.join(os.path.dirname(config.path), "fixtures", name)
            echo([Line(f"no fixture in {where}/: write some (docs/channels.md, \"Testing a "
                       "channel\") or name message files", "fail")], err=True)
            return EXIT_FAILED
    channels = channels_by_name(config)
    scratch = ScratchIdentity(config.identity)
    if channel.identity is not None:
        echo([Line(NOTE)])
    passed = failed = refused = 0
    for path in files:
        if not path.lower().endswith(FIXTURE_SUFFIXES):
            _run_messages(channel, path, echo, scratch.hook_for(channel))
            continue
        try:
            fixture = load_fixture(path, channels, default_channel=name)
        except FixtureError as error:
            refused += 1
            echo([Line(f"BAD  {path}: the fixture cannot be run:", "fail")]
                 + [Line(f"  {problem}") for problem in error.problems], err=True)
            continue
        outcome = check_fixture(fixture, channel, scratch.hook_for(channel))
        passed, failed = passed + outcome.passed, failed + (not outcome.passed)
        echo(outcome_lines(outcome, verbose))
    if passed or failed or refused:
        summary = f"{passed} passed, {failed} failed" + (f", {refused} refused" if refused
                                                         else "")
        echo([Line(summary, "fail" if failed or refused else "pass")])
    return EXIT_BAD if refused else EXIT_FAILED if failed else 0


def _run_messages(channel, path: str, echo: Callable[..., None], identity=None) -> None:
    from engine.cli.sender import messages_from_files

    found = list(messages_from_files([path]))
    if not found:
        echo([Line(f"{path}: no message in this file")])
    for label, payload in found:
        echo(run_lines(label, run_payload(channel, payload, identity)))
