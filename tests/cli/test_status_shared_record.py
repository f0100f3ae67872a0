"""`aiguillage status` with a shared_record: section: what the built-in registry holds, in the
table and under "shared_record" in the JSON; nothing of it without the section."""
from __future__ import annotations

import json
from pathlib import Path

from tests.cli.cli_support import cli

ENGINE = """\
store:
  url: sqlite:///store.db
"""
SECTION = """\
shared_record:
  listen: 127.0.0.1:8091
  repository_unique_id: 1.2.250.1.999.7.1
"""


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "engine.yaml"
    path.write_text(text)
    assert cli("db", "upgrade", "--config", str(path)).exit_code == 0
    return str(path)


def test_status_shows_the_shared_record(tmp_path: Path) -> None:
    """If status did not read the registry's tables, then no table and no JSON entry."""
    path = config(tmp_path, ENGINE + SECTION)
    table = cli("status", "--config", path)
    assert table.exit_code == 0, table.output
    assert "Shared record (XDS.b on 127.0.0.1:8091/xds)" in table.stdout
    assert "document entries" in table.stdout
    report = json.loads(cli("status", "--json", "--config", path).stdout)
    assert report["shared_record"] == {"document_entries": 0, "submission_sets": 0,
                                       "folders": 0, "documents": 0, "document_bytes": 0}


def test_status_without_the_section_says_nothing_of_it(tmp_path: Path) -> None:
    path = config(tmp_path, ENGINE)
    assert "Shared record" not in cli("status", "--config", path).stdout
    assert "shared_record" not in json.loads(cli("status", "--json", "--config", path).stdout)
