"""
Tests for ``aiguillage identity`` (engine/cli/identity.py) with click's CliRunner on a
real SQLite store filled through the index's own operations.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.store import migrate
from engine.store.store import make_engine
from identity.store import resolve
from identity.store.review import open_items
from tests.identity.cast import PEOPLE, seen
from tests.cli.cli_support import file_channel
from tests.identity.store.test_service import CHS, CHU, ident


def store_config(root: Path) -> tuple[Path, object]:
    """An engine.yaml on a fresh SQLite store at head, and that store's engine."""
    url = f"sqlite:///{root / 'store.db'}"
    (root / "channels").mkdir()
    (root / "channels" / "adt.yaml").write_text(textwrap.dedent(file_channel("adt")))
    config = root / "engine.yaml"
    config.write_text(textwrap.dedent(f"""\
        store:
          url: "{url}"
        channels:
          - channels/*.yaml
        """))
    engine = make_engine(url)
    migrate.ensure_current(engine)
    return config, engine


def fill(engine) -> dict[str, int]:
    """Father and the twins (one review item), Father seen again from CH-SUD, and a PDQ
    query that disclosed him, audited."""
    from identity.hl7.audit import PDQ_QUERY, AuditRecord
    from identity.store.audit import write_audit

    with engine.begin() as conn:
        ids = {name: resolve(conn, PEOPLE[name], f"message:{n}", ident(name)).person_id
               for n, name in enumerate(("father", "twin-lucas", "twin-hugo"), start=1)}
        resolve(conn, seen("father"), "message:4", ident("77", CHS))
        write_audit(conn, AuditRecord(PDQ_QUERY, "20261206162740", "DPI", "CABINET",
                                      "10.0.0.5:4100", "Q7", "PDQ7", "@PID.5.1.1^MOR", "OK",
                                      (str(ids["father"]),), (ident("77", CHS),)))
    return ids


@pytest.fixture
def store(tmp_path):
    config, engine = store_config(tmp_path)
    ids = fill(engine)
    yield config, engine, ids
    engine.dispose()


def cli(config: Path, *args: str, operator: str | None = "alice"):
    env = {"AIGUILLAGE_OPERATOR": operator} if operator else {}
    return CliRunner(env=env).invoke(main, ["identity", *args, "--config", str(config)],
                                     catch_exceptions=False)


def test_search_by_identifier_and_by_traits(store):
    """If a person is searched by one of its identifiers or by its traits, then it is found,
    with all its identifiers (and, by traits, its score first)."""
    config, _, ids = store
    by_id = cli(config, "search", "--identifier", CHS.oid, "77", "--json")
    assert by_id.exit_code == 0
    assert [p["person_id"] for p in json.loads(by_id.output)] == [ids["father"]]
    by_traits = cli(config, "search", "--name", "Moreau", "--first", "Jean-Pierre", "--birth-date", "19620305")
    assert by_traits.output.splitlines()[0].startswith(f"person {ids['father']} (active)  score ")
    assert f"  id {CHU.oid} father" in by_traits.output and f"  id {CHS.oid} 77" in by_traits.output
    nothing = cli(config, "search", "--identifier", CHS.oid, "nope")
    assert nothing.output == "no person found\n"


def test_show_lists_the_history_with_causes(store):
    """If a person is shown, then its history lines name each change's cause, and its open
    review items (only its own) follow."""
    config, _, ids = store
    result = cli(config, "show", str(ids["father"]))
    assert result.exit_code == 0
    assert f"link person {ids['father']} id {CHS.oid} 77 by message:4" in result.output
    twin = cli(config, "show", str(ids["twin-lucas"])).output.split("open review items:\n")
    assert twin[1].startswith(f"  item 1: person {ids['twin-hugo']} may be {ids['twin-lucas']} score ")
    assert "open review items" not in cli(config, "show", str(ids["father"])).output
    missing = cli(config, "show", "999")
    assert (missing.exit_code, missing.output.strip()) == (1, "person 999 does not exist")


def test_review_reject_then_the_queue_is_empty(store):
    """If the operator rejects the open item, then the queue is empty and the decision is
    in the history under the operator's name."""
    config, engine, ids = store
    listed = cli(config, "review", "list")
    assert listed.output.endswith("1 open item(s)\n")
    item = listed.output.split(":")[0].split()[1]
    rejected = cli(config, "review", "reject", item)
    assert rejected.exit_code == 0, rejected.output
    assert cli(config, "review", "list").output == "0 open item(s)\n"
    shown = cli(config, "show", str(ids["twin-lucas"])).output
    assert f"reject person {ids['twin-hugo']} other {ids['twin-lucas']} by operator:alice" in shown


def test_merge_unmerge_and_the_operator_is_required(store):
    """If merge runs without an operator, then it is refused; with one, merge and unmerge
    move the identifiers there and back."""
    config, _, ids = store
    refused = cli(config, "merge", str(ids["father"]), str(ids["twin-lucas"]), operator=None)
    assert refused.exit_code == 2 and "--operator" in refused.output
    merged = cli(config, "merge", str(ids["father"]), str(ids["twin-lucas"]))
    assert merged.output == f"person {ids['twin-lucas']} merged into {ids['father']}: 1 identifier(s) moved\n"
    again = cli(config, "merge", str(ids["father"]), str(ids["twin-lucas"]))
    assert again.exit_code == 1 and "merged into" in again.output
    back = cli(config, "unmerge", str(ids["twin-lucas"]))
    assert back.output == f"person {ids['twin-lucas']} unmerged: 1 identifier(s) moved back\n"


def test_review_accept_link_and_unlink(store):
    """If the item is accepted, then the incoming is merged into the candidate; unlink then
    moves an identifier off to a new person."""
    config, engine, ids = store
    with engine.connect() as conn:
        item = open_items(conn)[0]["id"]
    accepted = cli(config, "review", "accept", str(item))
    assert accepted.output == f"item {item} accepted: merged into person {ids['twin-lucas']}\n"
    unlinked = cli(config, "review", "unlink", CHU.oid, "twin-hugo")
    assert unlinked.exit_code == 0 and "now person" in unlinked.output
    bad = cli(config, "review", "link", str(item), str(ids["father"]))
    assert bad.exit_code == 1 and "already accepted" in bad.output


def test_export_jsonl_one_line_per_person_and_open_item(store):
    """If the index is exported, then each line is JSON: the active persons with their
    identifiers (domain and value) and traits, then the open review items."""
    config, _, ids = store
    lines = [json.loads(line) for line in cli(config, "export", "--format", "jsonl").output.splitlines()]
    persons = [line for line in lines if line["type"] == "person"]
    assert [p["person_id"] for p in persons] == sorted(ids.values())
    father = next(p for p in persons if p["person_id"] == ids["father"])
    assert father["identifiers"] == [{"domain": CHU.oid, "value": "father"}, {"domain": CHS.oid, "value": "77"}]
    assert father["traits"]["birth_name"] == "MOREAU"
    reviews = [line for line in lines if line["type"] == "review"]
    assert [(r["person_id"], r["candidate_id"]) for r in reviews] == [(ids["twin-hugo"], ids["twin-lucas"])]


def test_audit_lists_the_trail_newest_first(store):
    """If queries were audited, then ``identity audit`` lists them newest first, by
    transaction or person on demand, as text or JSON."""
    from identity.hl7.audit import PIX_QUERY, AuditRecord
    from identity.store.audit import write_audit

    config, engine, ids = store
    father = str(ids["father"])
    with engine.begin() as conn:
        write_audit(conn, AuditRecord("ITI-8", "20260320100000", "GAM", "CHU", "10.0.0.4:5000",
                                      "C1", "", "ADT^A04^ADT_A01", "AA", (father,)))
        write_audit(conn, AuditRecord(PIX_QUERY, "20260320100001", "DPI", "CABINET",
                                      "10.0.0.5:4100", "Q1", "T1", "x", "OK", (father,),
                                      (ident("77", CHS),)))
    listed = cli(config, "audit").output.splitlines()
    assert listed[0].startswith("#3 ") and listed[0].endswith(
        f" ITI-9 DPI/CABINET from 10.0.0.5:4100 Q1 (T1): OK, persons {father}; "
        f"disclosed {CHS.oid} 77")
    assert listed[1].endswith(f" ITI-8 GAM/CHU from 10.0.0.4:5000 C1: AA, persons {father}")
    assert listed[2].startswith("#1 ") and " ITI-21 " in listed[2]
    assert listed[3] == "3 record(s)"
    feeds = json.loads(cli(config, "audit", "--transaction", "ITI-8", "--json").output)
    assert [e["control_id"] for e in feeds] == ["C1"]
    assert cli(config, "audit", "--person", "999").output == "0 record(s)\n"
