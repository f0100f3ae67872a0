"""
The command sessions of docs/identity.md run: each ```console block after
``<!-- identity-doctest -->`` is run in order, on one store filled as the page says,
and every line it shows after a command must be a line of what the command printed
(times, which differ from run to run, compared as ``<time>``).
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.identity.store.test_cli import cli, fill, store_config

PAGE = Path(__file__).resolve().parents[3] / "docs" / "identity.md"
BLOCK = re.compile(r"<!-- identity-doctest -->\n```console\n(.*?)```", re.S)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def sessions(text: str) -> list[tuple[list[str], list[str]]]:
    """(command arguments after `aiguillage identity`, lines shown) in page order."""
    found = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            if line.startswith("$ aiguillage identity "):
                found.append((shlex.split(line)[3:], []))
            else:
                found[-1][1].append(line)
    return found


def test_the_page_has_sessions():
    """If the markers were lost, then the test below would check nothing: fail here."""
    assert len(sessions(PAGE.read_text(encoding="utf-8"))) >= 8


def test_the_commands_print_what_the_page_shows(tmp_path):
    """If a command's output changes, then the page's example no longer matches: fail naming it."""
    config, engine = store_config(tmp_path)
    fill(engine)
    for args, shown in sessions(PAGE.read_text(encoding="utf-8")):
        operator = args.pop(args.index("--operator") + 1) if "--operator" in args else None
        if operator:
            args.remove("--operator")
        result = cli(config, *args, operator=operator)
        assert result.exit_code == 0, (args, result.output)
        printed = set(TIME.sub("<time>", result.output).splitlines())
        missing = [line for line in shown if TIME.sub("<time>", line) not in printed]
        assert not missing, f"identity {' '.join(args)}: not printed: {missing}"
