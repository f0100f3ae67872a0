"""
Tests for ``aiguillage consent`` (engine/cli/consent.py) with click's CliRunner on a real
SQLite store: oppose, withdraw, show, across the identifiers of one person.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.store import consent
from identity.model import LocalIdentifier
from identity.store import link, resolve
from tests.identity.cast import PEOPLE
from tests.identity.store.test_cli import store_config
from tests.identity.store.test_service import CHS, CHU

PATIENT = f"000003^^^&{CHU.oid}&ISO"


@pytest.fixture
def store(tmp_path):
    config, engine = store_config(tmp_path)
    yield config, engine
    engine.dispose()


def cli(config, *args: str, operator: str | None = "alice"):
    env = {"AIGUILLAGE_OPERATOR": operator} if operator else {}
    return CliRunner(env=env).invoke(main, ["consent", *args, "--config", str(config)],
                                     catch_exceptions=False)


def test_oppose_then_show_then_withdraw(store):
    """If an operator records an opposition, then show lists it open with the operator as
    cause; once withdrawn, it is listed withdrawn, and a second withdrawal exits 1."""
    config, engine = store
    done = cli(config, "oppose", "--patient", PATIENT, "--reason", "asked at admission")
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"{PATIENT}: opposed to shared-record (opposition 1)")
    shown = json.loads(cli(config, "show", "--patient", PATIENT, "--json").output)
    assert [(o["cause"], o["reason"], o["open"]) for o in shown] == [
        ("operator:alice", "asked at admission", True)]
    table = cli(config, "show", "--patient", PATIENT).output
    assert "operator:alice" in table and "open" in table
    done = cli(config, "withdraw", "--patient", PATIENT, operator="bob")
    assert done.exit_code == 0 and "withdrawn" in done.output
    shown = json.loads(cli(config, "show", "--patient", PATIENT, "--json").output)
    assert [(o["open"], o["withdrawn_cause"]) for o in shown] == [(False, "operator:bob")]
    again = cli(config, "withdraw", "--patient", PATIENT)
    assert again.exit_code == 1 and "no open opposition" in again.output


def test_opposing_twice_changes_nothing(store):
    config, engine = store
    cli(config, "oppose", "--patient", PATIENT)
    again = cli(config, "oppose", "--patient", PATIENT)
    assert again.exit_code == 0 and "already opposed" in again.output
    with engine.connect() as conn:
        assert len(consent.history(conn, [(CHU.oid, "000003")])) == 1


def test_show_covers_the_persons_other_identifiers(store):
    """If the index links CH-SUD's number to the same person, then show by that number lists
    the opposition recorded under CHU's."""
    config, engine = store
    with engine.begin() as conn:
        person = resolve(conn, PEOPLE["father"], "message:1",
                         LocalIdentifier(CHU, "000003")).person_id
        link(conn, LocalIdentifier(CHS, "77"), person, "operator:alice")
    cli(config, "oppose", "--patient", PATIENT)
    shown = json.loads(cli(config, "show", "--patient", f"77^^^&{CHS.oid}&ISO",
                           "--json").output)
    assert [o["patient"] for o in shown] == [PATIENT]


@pytest.mark.parametrize("patient", ["000003", "^^^&1.2.3&ISO"])
def test_a_bad_patient_identifier_is_a_usage_error(store, patient):
    config, _ = store
    done = cli(config, "oppose", "--patient", patient)
    assert done.exit_code == 2 and "VALUE^^^&OID&ISO" in done.output


def test_an_operator_is_required(store):
    config, _ = store
    done = cli(config, "oppose", "--patient", PATIENT, operator=None)
    assert done.exit_code == 2 and "--operator" in done.output
