"""
The "Testing a channel" section of docs/channels.md shows real fixtures and real output: its
commands run in tests/test_docs.py (``<!-- doctest: example=repo output -->``); this module
checks the rest.

- A ```yaml block starting with ``# fragment — fixture: PATH`` is the fixture file PATH of the
  repository, word for word (and tests/test_fixtures.py runs that file).
- ``<!-- fixture-failure: PATH OLD NEW -->`` before a ```text block: that block is what
  ``aiguillage test-channel`` prints for the fixture PATH whose expected outputs say NEW
  where they said OLD.

test-case-name: tests.cli.test_channeltest_docs
"""
from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
_FIXTURE = re.compile(r"^```yaml\n# fragment — fixture: (\S+)\n(.*?)^```$", re.M | re.S)
_FAILURE = re.compile(r"^<!-- fixture-failure: (\S+) (\S+) (\S+) -->\n```text\n(.*?)^```$",
                      re.M | re.S)


def test_fixture_on_the_page_is_the_repository_file():
    """If the page shows a fixture, then it is the file the repository runs, word for word."""
    shown = _FIXTURE.findall(PAGE)
    assert shown, "the page shows no fixture"
    for path, text in shown:
        assert text == (ROOT / path).read_text(encoding="utf-8"), path


def test_failure_on_the_page_is_what_the_command_prints(tmp_path, monkeypatch):
    """If the page shows a failing fixture's report, then test-channel prints exactly that
    for the fixture changed as the page says (run from the repository, as the page is)."""
    (path, old, new, report), = _FAILURE.findall(PAGE)
    original = (ROOT / path).read_text(encoding="utf-8")
    expect = original.index("expect:")
    changed = original[:expect] + original[expect:].replace(old, new)
    assert changed != original
    folder = tmp_path / Path(path).parent.name
    folder.mkdir()
    (folder / Path(path).name).write_text(changed, encoding="utf-8")
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["test-channel", Path(path).parent.name,
                                       str(folder / Path(path).name)])
    assert result.exit_code == 1
    assert result.output.replace(str(folder / Path(path).name), path) == report
