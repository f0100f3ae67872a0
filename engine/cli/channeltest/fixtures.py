"""
Channel fixtures: one YAML file, one message, the outcome a channel must give it.

Mapping tests are written as data, next to the configuration, so that the engineer who writes
a channel writes its tests too, in the same language. ``aiguillage test-channel`` runs them
and so does pytest (tests/test_fixtures.py). The format (docs/channels.md, "Testing a
channel")::

    description: A glucose result coded locally is sent with its LOINC code   # required
    channel: oru-lab        # optional: the name of the folder the fixture is in
    input: |                # the message, one segment per line; or input-file: PATH
      MSH|^~\\&|SIL|...
    expect:
      status: TRANSFORMED   # TRANSFORMED (default) | FILTERED | ERROR
      reason: "code not in table"     # optional: a part of the error or filter reason
      deliveries:           # optional: per destination, the whole output, or null: not sent
        results: |
          MSH|^~\\&|...
      values:               # optional: per destination, path -> value (unescaped text;
        results:            # "" or null: absent; a [*] path takes the list of values present)
          OBX[1]-3.1: "14749-6"

Loading (:func:`load_fixture`) checks everything it can without running the channel and
raises :class:`FixtureError` with every problem at its ``file:line``: an unknown key (with a
did-you-mean), a missing description, an unknown channel or destination, a bad path, an
input file that cannot be read or holds more than one message. Inline input is written to
bytes with the character set its MSH-18 names (else the channel's ``encoding``), as a sender
would send it; a file is read as ``aiguillage send`` reads it (CR, LF or CRLF between
segments, sent with CR).
:func:`check_fixture` runs the fixture through :func:`engine.cli.channeltest.runner.run_payload` and
lists what differs, output differences as unified diffs of expected vs actual segments.

test-case-name: tests.cli.test_channeltest
"""
from __future__ import annotations

import difflib
import glob
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from engine import status as st
from engine.cli.channeltest.runner import ChannelRun, Line, run_payload, segments
from engine.config.settings import ChannelConfig
from engine.config.yamlsource import YAMLMapping, YAMLSourceError, read_yaml

FIXTURES_DIR = "fixtures"  # next to engine.yaml: fixtures/<channel>/<case>.yaml
KEYS = ("description", "channel", "input", "input-file", "expect")
EXPECT_KEYS = ("status", "reason", "deliveries", "values")
STATUSES = (st.TRANSFORMED, st.FILTERED, st.ERROR)


class FixtureError(Exception):
    """A fixture that cannot be run as written; ``problems`` are ``file:line: text``."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ValueCheck:
    """One ``values:`` entry: the value (or, for a ``[*]`` path, the values) expected."""

    path: Any  # mappings.paths.Path
    expected: str | tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Fixture:
    """A fixture, checked and ready to run."""

    file: str
    name: str  # <channel>/<case>: the test's id
    description: str
    channel: str
    payload: bytes
    status: str = st.TRANSFORMED
    reason: str | None = None
    deliveries: Mapping[str, str | None] = field(default_factory=dict)
    values: Mapping[str, tuple[ValueCheck, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FixtureOutcome:
    """A fixture's run and what differs from what it expects (nothing: it passes)."""

    fixture: Fixture
    run: ChannelRun
    failures: tuple[Line, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def fixture_files(config_path: str, channel: str | None = None) -> list[str]:
    """The fixture files next to ``config_path`` (engine.yaml): one channel's, or all."""
    base = os.path.join(os.path.dirname(config_path), FIXTURES_DIR)
    pattern = os.path.join(base, channel if channel is not None else "*", "*.yaml")
    return sorted(glob.glob(pattern))


def fixture_name(path: str, channel: str | None = None) -> str:
    """``<channel>/<case>``: the folder's name (or ``channel``) and the file's stem."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return f"{channel or folder}/{os.path.splitext(os.path.basename(path))[0]}"


def load_fixture(path: str, channels: Mapping[str, ChannelConfig],
                 default_channel: str | None = None) -> Fixture:
    """Read and check the fixture at ``path``; raise :class:`FixtureError`.

    Its channel is its ``channel:``, else its folder's name; ``default_channel`` is the one
    the command names: a fixture for another channel is refused, and one outside the folders
    of the channels is for it.
    """
    try:
        document = read_yaml(path)
    except YAMLSourceError as error:
        raise FixtureError([f"{path}:{error.line}: {error.message}" if error.line
                            else f"{path}: {error.message}"]) from None
    reader = _Reader(path)
    for duplicate in document.duplicates:
        reader.problem(duplicate.position.line, f"{duplicate.key!r} is written twice (first "
                                                f"on line {duplicate.first.line})")
    fixture = reader.fixture(document.root, channels, default_channel)
    if reader.problems:
        raise FixtureError(reader.problems)
    return fixture


def check_fixture(fixture: Fixture, channel: ChannelConfig,
                  identity: Any = None) -> FixtureOutcome:
    """Run ``fixture`` through ``channel`` and compare; never raises for a mismatch.
    ``identity``: the hook of the channel's ``identity:`` step (see run_payload)."""
    run = run_payload(channel, fixture.payload, identity)
    failures: list[Line] = []
    if run.status != fixture.status:
        failures.append(Line(f"status: expected {fixture.status}, got {run.status}"
                             + (f" ({run.reason})" if run.reason else "")))
    elif fixture.reason is not None and fixture.reason not in run.reason:
        failures.append(Line(f"reason: expected it to contain {fixture.reason!r}, "
                             f"got {run.reason!r}"))
    for name, expected in fixture.deliveries.items():
        failures += _delivery_failures(name, expected, run)
    for name, checks in fixture.values.items():
        failures += _value_failures(name, checks, run)
    return FixtureOutcome(fixture, run, tuple(failures))


def outcome_lines(outcome: FixtureOutcome, verbose: bool = False) -> list[Line]:
    """PASS/FAIL and the description; on failure (always with ``verbose``) what differs and
    the steps that ran, with the segments they changed when ``verbose``."""
    from engine.cli.channeltest.runner import step_lines

    fixture = outcome.fixture
    if outcome.passed:
        lines = [Line(f"PASS {fixture.name}: {fixture.description}", "pass")]
    else:
        lines = [Line(f"FAIL {fixture.name}: {fixture.description} ({fixture.file})", "fail")]
        lines += [Line(f"  {line.text}", line.kind) for line in outcome.failures]
    if verbose or not outcome.passed:
        lines.append(Line(f"  steps ({outcome.run.status}):"))
        lines += [Line(f"  {line.text}", line.kind)
                  for line in step_lines(outcome.run.steps, show_changes=verbose)]
    return lines


def failure_text(outcome: FixtureOutcome) -> str:
    """The failure report as plain text (what pytest shows)."""
    return "\n".join(line.text for line in outcome_lines(outcome))


# -- comparing -------------------------------------------------------------------------------

def _delivery_failures(name: str, expected: str | None, run: ChannelRun) -> list[Line]:
    output = run.output(name)
    if expected is None:
        if output.text is None:
            return []
        return [Line(f"{name}: expected not sent, but it is sent:")] + [
            Line(f"  {segment}") for segment in segments(output.text)]
    if output.text is None:
        return [Line(f"{name}: expected a message, but it is {output.not_sent}")]
    want, got = _expected_segments(expected), segments(output.text)
    if want == got:
        return []
    lines = [Line(f"{name}: the output differs from the one expected:")]
    for line in difflib.unified_diff(want, got, f"expected ({name})", f"actual ({name})",
                                     lineterm="", n=1):
        kind = "removed" if line.startswith("-") else "added" if line.startswith("+") else ""
        lines.append(Line(f"  {line}", "" if line[:3] in ("---", "+++") else kind))
    return lines


def _expected_segments(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.rstrip("\r\n").split("\n")]


def _value_failures(name: str, checks: tuple[ValueCheck, ...], run: ChannelRun) -> list[Line]:
    from mappings.message import HL7Message, MessageError
    from mappings.paths import EVERY, PathError, get, get_one

    output = run.output(name)
    if output.text is None:
        return [Line(f"{name}: its values cannot be checked: it is {output.not_sent}")]
    try:
        message = HL7Message.parse(output.text)
    except MessageError as error:
        return [Line(f"{name}: the output cannot be parsed: {error}")]
    lines = []
    for check in checks:
        path = check.path
        try:
            if path.occurrence is EVERY or path.repetition is EVERY:
                actual: Any = tuple(get(message, path))
            else:
                actual = get_one(message, path) or ""
        except PathError as error:
            actual = f"<{error}>"
        if actual != check.expected:
            lines.append(Line(f"{name} {path}: expected {_shown(check.expected)}, "
                              f"got {_shown(actual)}"))
    return lines


def _shown(value: str | tuple[str, ...]) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


# -- reading ---------------------------------------------------------------------------------

def _line(container: Any, key: Any = None) -> int:
    try:
        return container.key_position(key).line if key is not None else container.position.line
    except AttributeError:
        return 0


def _did_you_mean(word: Any, known) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Reader:
    """Checks a fixture's YAML, collecting every problem with its line."""

    def __init__(self, path: str):
        self.path = path
        self.found: list[tuple[int, str]] = []

    def problem(self, line: int, text: str) -> None:
        self.found.append((line, f"{self.path}:{line}: {text}" if line else
                           f"{self.path}: {text}"))

    @property
    def problems(self) -> list[str]:
        """Every problem, in the order of the lines."""
        return [text for _, text in sorted(self.found, key=lambda item: item[0])]

    def fixture(self, root: Any, channels: Mapping[str, ChannelConfig],
                default_channel: str | None) -> Fixture | None:
        if not isinstance(root, YAMLMapping):
            self.problem(_line(root), "a fixture is a mapping with description, input (or "
                                      "input-file) and expect")
            return None
        self._unknown_keys(root, KEYS, "")
        description = root.get("description")
        if not isinstance(description, str) or not description.strip() \
                or "\n" in description.strip():
            self.problem(_line(root, "description") if "description" in root else 1,
                         "description: expected one line saying what this case shows")
        channel = self._channel(root, channels, default_channel)
        payload = self._input(root, channel)
        expect = root.get("expect", {})
        if expect is None:
            expect = {}
        if not isinstance(expect, Mapping):
            self.problem(_line(root, "expect"), "expect: expected a mapping (status, reason, "
                                                "deliveries, values)")
            expect = {}
        else:
            self._unknown_keys(expect, EXPECT_KEYS, "expect.")
        status = expect.get("status", st.TRANSFORMED)
        if status not in STATUSES:
            self.problem(_line(expect, "status"), f"expect.status: expected one of "
                                                  f"{', '.join(STATUSES)}, not {status!r}")
        reason = expect.get("reason")
        if reason is not None and (not isinstance(reason, str) or not reason):
            self.problem(_line(expect, "reason"), "expect.reason: expected text (a part of "
                                                  "the error or filter reason)")
        destinations = {d.name for d in channel.destinations} if channel else None
        deliveries = self._deliveries(expect, destinations)
        values = self._values(expect, destinations)
        if self.problems:
            return None
        return Fixture(self.path, fixture_name(self.path, channel.name), description.strip(),
                       channel.name, payload, status, reason, deliveries, values)

    def _unknown_keys(self, mapping: Mapping, known: tuple[str, ...], prefix: str) -> None:
        for key in mapping:
            if key not in known:
                self.problem(_line(mapping, key), f"{prefix}{key}: unknown key"
                                                  f"{_did_you_mean(key, known)}; expected "
                                                  f"{', '.join(known)}")

    def _channel(self, root: YAMLMapping, channels: Mapping[str, ChannelConfig],
                 default: str | None) -> ChannelConfig | None:
        """Its ``channel:``, else its folder's name; ``default`` (the channel the command
        names) for a fixture kept outside the folders of the channels, and it must agree."""
        folder = os.path.basename(os.path.dirname(os.path.abspath(self.path)))
        if "channel" in root:
            name, how, line = root["channel"], "its channel:", _line(root, "channel")
        elif default is None or folder in channels:
            name, how, line = folder, "the folder it is in", 1
        else:
            name, how, line = default, "the command", 1
        if default is not None and name != default:
            self.problem(line, f"this fixture is for channel {name!r} (named by {how}), "
                               f"not {default!r}")
            return None
        channel = channels.get(name) if isinstance(name, str) else None
        if channel is None:
            self.problem(line, f"no channel {name!r} (named by {how})"
                               f"{_did_you_mean(name, channels)}; the channels: "
                               f"{', '.join(sorted(channels)) or 'none'}")
        return channel

    def _input(self, root: YAMLMapping, channel: ChannelConfig | None) -> bytes:
        from engine.cli.sender import split_messages

        if ("input" in root) == ("input-file" in root):
            self.problem(_line(root), "a fixture needs input (the message) or input-file "
                                      "(a file holding it), one of them")
            return b""
        if "input" in root:
            key, text = "input", root["input"]
            if not isinstance(text, str) or not text.strip():
                self.problem(_line(root, key), "input: expected the message, one segment "
                                               "per line (input: |)")
                return b""
            payload = self._encode(text, channel, _line(root, key))
        else:
            key, name = "input-file", root["input-file"]
            if not isinstance(name, str) or not name.strip():
                self.problem(_line(root, key), "input-file: expected a file path")
                return b""
            file = os.path.join(os.path.dirname(self.path), os.path.expanduser(name))
            try:
                with open(file, "rb") as stream:
                    payload = stream.read()
            except OSError as error:
                self.problem(_line(root, key), f"input-file: cannot read {file}: "
                                               f"{error.strerror or error}")
                return b""
        found = split_messages(payload)
        if len(found) != 1:
            self.problem(_line(root, key), f"{key}: holds {len(found)} messages; a fixture "
                                           "is one message")
            return b""
        return found[0]

    def _encode(self, text: str, channel: ChannelConfig | None, line: int) -> bytes:
        """Inline input as a sender would send it: in the character set it declares."""
        from mllp.header import HeaderError, read_header, resolve_codec

        lines = [part.rstrip("\r") for part in text.strip("\r\n").split("\n") if part.strip()]
        payload = ("\r".join(lines) + "\r").encode("utf-8")
        try:
            header = read_header(payload)
            charset = header.charset or (channel.encoding if channel else "UNICODE UTF-8")
            codec = resolve_codec(charset)
        except (HeaderError, LookupError):
            return payload  # the run reports it, as the intake would
        try:
            return payload.decode("utf-8").encode(codec)
        except UnicodeEncodeError as error:
            self.problem(line, f"input: {error.object[error.start]!r} cannot be written in "
                               f"{charset}, the message's character set")
            return payload

    def _deliveries(self, expect: Mapping, destinations: set[str] | None) -> dict:
        raw = expect.get("deliveries")
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problem(_line(expect, "deliveries"), "expect.deliveries: expected "
                                                      "destination: message (or null)")
            return {}
        found = {}
        for name, text in raw.items():
            line = _line(raw, name)
            self._destination(name, destinations, line, "deliveries")
            if text is not None and not (isinstance(text, str) and text.strip()):
                self.problem(line, f"expect.deliveries.{name}: expected the whole message "
                                   "(one segment per line), or null for not sent")
                continue
            found[name] = text
        return found

    def _destination(self, name: Any, destinations: set[str] | None, line: int,
                     key: str) -> None:
        if destinations is not None and name not in destinations:
            self.problem(line, f"expect.{key}: the channel has no destination {name!r}"
                               f"{_did_you_mean(name, destinations)}; its destinations: "
                               f"{', '.join(sorted(destinations))}")

    def _values(self, expect: Mapping, destinations: set[str] | None) -> dict:
        raw = expect.get("values")
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problem(_line(expect, "values"), "expect.values: expected destination: "
                                                  "{path: value}")
            return {}
        found = {}
        for name, entries in raw.items():
            self._destination(name, destinations, _line(raw, name), "values")
            if not isinstance(entries, Mapping):
                self.problem(_line(raw, name), f"expect.values.{name}: expected path: value "
                                               'entries, such as OBX[1]-3.1: "14749-6"')
                continue
            found[name] = tuple(check for path, value in entries.items()
                                if (check := self._value(name, path, value,
                                                         _line(entries, path))) is not None)
        return found

    def _value(self, name: str, text: Any, value: Any, line: int) -> ValueCheck | None:
        from mappings.paths import EVERY, PathError, parse_path

        where = f"expect.values.{name}.{text}"
        try:
            path = parse_path(str(text).strip())
        except PathError as error:
            self.problem(line, f"{where}: {error}")
            return None
        if path.is_segment:
            self.problem(line, f"{where}: {path} is a segment; name a value such as {path}-1")
            return None
        if path.occurrence is EVERY or path.repetition is EVERY:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.problem(line, f"{where}: a [*] path takes the list of values present, "
                                   'such as ["LN", "LN"]')
                return None
            return ValueCheck(path, tuple(value), line)
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.problem(line, f"{where}: expected text, not {value!r} (write it in quotes)")
            return None
        return ValueCheck(path, value, line)
