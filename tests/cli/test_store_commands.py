"""
The ``aiguillage`` commands that read or change a store (status, messages list, show and
replay), run in-process with click's CliRunner against a store the real engine filled once
per module, as an operator finds it; ``status`` also against engines running as
subprocesses, to show which process holds which lane.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, select

from engine import status as st
from engine.store.schema import deliveries, journal, messages
from engine.synthetic import control_id_of
from mllp.ack import parse_ack
from tests.cli.cli_support import (
    GARBAGE, GOOD, LAB, REFUSED, REPO_ROOT, LoopbackMLLPServer, Populated, cli, exchange,
    file_channel, free_port, simple_config, stop_engine, write_config)


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    """adt: 3 good messages, 1 refused downstream (delivery parked in ERROR), 1 duplicate,
    1 unreadable; lab: 2 messages; idle: configured, silent. Deliveries: adt to an MLLP
    sink and an archive folder, lab to an archive folder."""
    root = tmp_path_factory.mktemp("populated")
    server = LoopbackMLLPServer()
    adt_port, lab_port = free_port(), free_port()
    write_config(root, {
        "adt": f"""\
            name: adt
            source:
              type: mllp
              port: {adt_port}
            destinations:
              - name: sink
                type: mllp
                host: 127.0.0.1
                port: {server.port}
                retry:
                  max_attempts: 3
                  initial_delay: 0.1s
              - name: archive
                type: file
                directory: ../out/adt
            """,
        "lab": file_channel("lab", lab_port),
        "idle": file_channel("idle", 0),
    })
    log = open(root / "engine.log", "wb")
    engine = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", "--config",
                               str(root / "engine.yaml")], cwd=REPO_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=dict(os.environ,
                                                                 PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 20
        while f"listening on port {lab_port}" not in (root / "engine.log").read_text():
            assert engine.poll() is None, (root / "engine.log").read_text()
            assert time.monotonic() < deadline, (root / "engine.log").read_text()
            time.sleep(0.05)
        adt_acks = exchange(adt_port, GOOD + [REFUSED, GOOD[0], GARBAGE])
        lab_acks = exchange(lab_port, LAB)
        accepted = [parse_ack(a).accepted for a in adt_acks + lab_acks]
        assert accepted == [True] * 5 + [False] + [True] * 2
        assert parse_ack(adt_acks[-1]).code == "AR"
        result = Populated(root)
        done = result.rows  # poll the store until every delivery is settled
        deadline = time.monotonic() + 20
        while True:
            settled = done(select(deliveries.c.status))
            if len(settled) == 10 and all(r.status != st.QUEUED for r in settled):
                break
            assert time.monotonic() < deadline, (settled, (root / "engine.log").read_text())
            time.sleep(0.1)
    finally:
        stop_engine(engine)
        log.close()
        server.close()
    assert engine.returncode == 0, (root / "engine.log").read_text()
    for row in result.rows(select(messages.c.id, messages.c.control_id, messages.c.status,
                                  messages.c.raw).order_by(messages.c.id)):
        key = row.control_id or "garbage"
        if row.status == st.DUPLICATE:
            key = f"duplicate:{row.control_id}"
        result.ids[key] = row.id
        result.payloads[key] = row.raw
    yield result


# -- status ----------------------------------------------------------------------------

COUNT_KEYS = {"received", "filtered", "queued", "sent", "errored", "rate"}


def test_status_json_counts_per_channel_and_destination(populated: Populated) -> None:
    result = cli("status", "--json", "--config", str(populated.config))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    assert report.pop("nodes") == []  # no engine runs on this store
    assert set(report) == {"adt", "lab", "idle"}
    for channel in report.values():
        assert COUNT_KEYS <= set(channel)
        for destination in channel["destinations"].values():
            assert COUNT_KEYS <= set(destination)
    adt, lab, idle = report["adt"], report["lab"], report["idle"]
    assert (adt["received"], adt["duplicates"], adt["filtered"], adt["queued"]) == (6, 1, 0, 0)
    assert adt["sent"] == 3 + 4  # sink took 3; archive all 4 readable originals
    assert adt["errored"] == 2  # the unreadable message and the delivery refused downstream
    sink, archive = adt["destinations"]["sink"], adt["destinations"]["archive"]
    assert (sink["received"], sink["sent"], sink["errored"], sink["queued"]) == (4, 3, 1, 0)
    assert (archive["received"], archive["sent"], archive["errored"]) == (4, 4, 0)
    assert (lab["received"], lab["sent"], lab["errored"]) == (2, 2, 0)
    assert lab["destinations"]["archive"]["sent"] == 2
    assert (idle["received"], idle["sent"]) == (0, 0)
    assert idle["destinations"]["archive"]["received"] == 0
    # Rates are per second over the last minute; everything happened in it.
    assert adt["rate"] == pytest.approx(6 / 60, abs=0.01)
    assert sink["rate"] == pytest.approx(3 / 60, abs=0.01)
    assert idle["rate"] == 0


def test_db_check_counts_agrees_then_finds_and_repairs_a_wrong_count(
        populated: Populated, tmp_path: Path) -> None:
    """If the engine kept the counts, then check-counts says they agree (exit 0); if a count
    is wrong, then it names it and exits 1; --repair makes them agree again."""
    store = populated.copy(tmp_path)
    result = cli("db", "check-counts", "--config", str(store.config))
    assert (result.exit_code, result.stdout) == (
        0, "counts agree with the stored messages and deliveries\n")
    engine = create_engine(store.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE counts SET count = count + 5 WHERE destination = 'sink' "
                             "AND status = 'SENT'")
    engine.dispose()
    result = cli("db", "check-counts", "--config", str(store.config))
    assert (result.exit_code, result.stdout) == (1, "adt sink SENT: kept 8, counted 3\n")
    assert cli("db", "check-counts", "--repair", "--config", str(store.config)).exit_code == 0
    assert cli("db", "check-counts", "--config", str(store.config)).exit_code == 0


def test_status_table(populated: Populated) -> None:
    result = cli("status", "--config", str(populated.config))
    assert result.exit_code == 0, result.output
    for name in ("adt", "lab", "idle", "sink", "archive"):
        assert name in result.stdout
    assert "received" in result.stdout


def test_status_on_a_missing_database_exits_3_and_creates_nothing(tmp_path: Path) -> None:
    config = simple_config(tmp_path, url="sqlite:///var/missing/store.db")
    result = cli("status", "--config", str(config))
    assert result.exit_code == 3
    assert "does not exist" in result.stderr
    assert str(tmp_path / "var" / "missing" / "store.db") in result.stderr
    assert not (tmp_path / "var").exists(), "a reading command created the store's folder"


def test_status_on_an_empty_database_exits_3_telling_to_upgrade(tmp_path: Path) -> None:
    config = simple_config(tmp_path)
    (tmp_path / "store.db").write_bytes(b"")
    result = cli("status", "--config", str(config))
    assert result.exit_code == 3
    assert "aiguillage db upgrade" in result.stderr
    assert result.stdout == ""


def test_status_on_an_unreachable_database_exits_3(tmp_path: Path) -> None:
    config = simple_config(tmp_path, url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    result = cli("status", "--json", "--config", str(config))
    assert result.exit_code == 3
    assert "cannot be read" in result.stderr


# -- messages list ---------------------------------------------------------------------

def listed(populated: Populated, *options: str) -> list[dict]:
    result = cli("messages", "list", "--json", "--config", str(populated.config), *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_messages_list_newest_first_without_payloads(populated: Populated) -> None:
    rows = listed(populated)
    assert [r["id"] for r in rows] == sorted(populated.ids.values(), reverse=True)
    assert all("raw" not in r for r in rows)


def test_messages_list_filters(populated: Populated) -> None:
    ids = populated.ids
    assert {r["id"] for r in listed(populated, "--channel", "lab")} == {
        ids[control_id_of(m)] for m in LAB}
    assert {r["id"] for r in listed(populated, "--status", "ERROR")} == {ids["garbage"]}
    assert {r["id"] for r in listed(populated, "--status", "duplicate")} == {
        ids[f"duplicate:{control_id_of(GOOD[0])}"]}
    assert {r["id"] for r in listed(populated, "--control-id", control_id_of(GOOD[1]))} == {
        ids[control_id_of(GOOD[1])]}
    assert {r["id"] for r in listed(populated, "--control-id", control_id_of(GOOD[0]))} == {
        ids[control_id_of(GOOD[0])], ids[f"duplicate:{control_id_of(GOOD[0])}"]}
    assert len(listed(populated, "--since", "10m")) == len(ids)
    assert listed(populated, "--until", "10m") == []
    assert listed(populated, "--since", "2999-01-01T00:00") == []
    assert len(listed(populated, "--limit", "3")) == 3
    assert listed(populated, "--channel", "adt", "--status", "TRANSFORMED", "--limit", "2")[0][
        "control_id"] == "REFUSE-4"


def test_messages_list_table(populated: Populated) -> None:
    result = cli("messages", "list", "--config", str(populated.config), "--channel", "lab")
    assert result.exit_code == 0, result.output
    assert "ORU" in result.stdout and "TRANSFORMED" in result.stdout


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_messages_list_bad_time_is_a_usage_error(populated: Populated, option: str) -> None:
    result = cli("messages", "list", "--config", str(populated.config), option, "yesterday")
    assert result.exit_code == 2
    assert "yesterday" in result.stderr
    assert option in result.stderr
    assert result.stdout == ""


def test_messages_list_bad_status_is_a_usage_error(populated: Populated) -> None:
    result = cli("messages", "list", "--config", str(populated.config), "--status", "LOST")
    assert result.exit_code == 2


# -- messages show ---------------------------------------------------------------------

def test_messages_show_prints_fields_segments_deliveries_and_journal(
        populated: Populated) -> None:
    control_id = control_id_of(GOOD[0])
    message_id = populated.ids[control_id]
    result = cli("messages", "show", str(message_id), "--config", str(populated.config))
    assert result.exit_code == 0, result.output
    out = result.stdout

    assert f"control_id: {control_id}" in out
    assert "status: TRANSFORMED" in out
    assert "channel: adt" in out
    lines = out.splitlines()
    for segment in GOOD[0].decode("utf-8").split("\r"):
        if segment:
            assert "  " + segment in lines, f"segment not printed whole on a line: {segment!r}"
    assert "deliveries" in out and "journal" in out
    assert "sink" in out and "archive" in out
    assert out.count("SENT") >= 2 and "RECEIVED" in out and "QUEUED" in out


def test_messages_show_of_a_parked_delivery_shows_its_error(populated: Populated) -> None:
    result = cli("messages", "show", str(populated.ids["REFUSE-4"]), "--config",
                 str(populated.config))
    assert result.exit_code == 0, result.output
    assert "ERROR" in result.stdout
    assert "refused" in result.stdout


def test_messages_show_prints_the_payload_literally(populated: Populated) -> None:
    """No rich markup, no emoji codes: what was received is what is shown."""
    result = cli("messages", "show", str(populated.ids["garbage"]), "--config",
                 str(populated.config))
    assert result.exit_code == 0, result.output
    assert "  NOT HL7 :thumbs_up: [bold]AT ALL[/bold]" in result.stdout.splitlines()
    assert "status: ERROR" in result.stdout


@pytest.mark.parametrize("key", ["garbage", control_id_of(LAB[1]), control_id_of(GOOD[2])])
def test_messages_show_raw_writes_the_exact_bytes(populated: Populated, key: str) -> None:
    result = cli("messages", "show", str(populated.ids[key]), "--raw", "--config",
                 str(populated.config))
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == populated.payloads[key]
    assert result.stdout_bytes == {"garbage": GARBAGE, control_id_of(LAB[1]): LAB[1],
                                   control_id_of(GOOD[2]): GOOD[2]}[key]


def test_messages_show_unknown_id_exits_1(populated: Populated) -> None:
    result = cli("messages", "show", "999999", "--config", str(populated.config))
    assert result.exit_code == 1
    assert "999999 does not exist" in result.stderr


# -- messages replay -------------------------------------------------------------------

def test_replay_requeues_the_delivery_parked_in_error(populated: Populated,
                                                      tmp_path: Path) -> None:
    store = populated.copy(tmp_path)
    message_id = store.ids["REFUSE-4"]
    result = cli("messages", "replay", str(message_id), "--config", str(store.config))
    assert result.exit_code == 0, result.output
    assert "1 delivery(ies) queued again (sink)" in result.stdout

    rows = store.rows(select(deliveries.c.destination, deliveries.c.status,
                             deliveries.c.attempts)
                      .where(deliveries.c.message_id == message_id)
                      .order_by(deliveries.c.destination))
    assert [(r.destination, r.status) for r in rows] == [("archive", st.SENT),
                                                         ("sink", st.QUEUED)]
    assert rows[1].attempts == 0
    [status] = store.rows(select(messages.c.status).where(messages.c.id == message_id))
    assert status.status == st.TRANSFORMED
    lines = store.rows(select(journal.c.status, journal.c.detail)
                       .where(journal.c.message_id == message_id)
                       .order_by(journal.c.id.desc()).limit(1))
    assert (lines[0].status, lines[0].detail) == (st.QUEUED, "replay")


def test_replay_of_a_duplicate_is_refused(populated: Populated, tmp_path: Path) -> None:
    store = populated.copy(tmp_path)
    duplicate = store.ids[f"duplicate:{control_id_of(GOOD[0])}"]
    result = cli("messages", "replay", str(duplicate), "--config", str(store.config))
    assert result.exit_code == 1
    assert "duplicate" in result.stderr and "original" in result.stderr
    [row] = store.rows(select(messages.c.status).where(messages.c.id == duplicate))
    assert row.status == st.DUPLICATE


def test_replay_of_a_message_without_failed_delivery_is_refused(populated: Populated,
                                                                  tmp_path: Path) -> None:
    store = populated.copy(tmp_path)
    message_id = store.ids[control_id_of(GOOD[1])]
    result = cli("messages", "replay", str(message_id), "--config", str(store.config))
    assert result.exit_code == 1
    assert "--reprocess" in result.stderr
    [row] = store.rows(select(messages.c.status).where(messages.c.id == message_id))
    assert row.status == st.TRANSFORMED


def test_replay_reprocess_sets_the_message_back_to_received(populated: Populated,
                                                            tmp_path: Path) -> None:
    store = populated.copy(tmp_path)
    message_id = store.ids[control_id_of(GOOD[1])]
    result = cli("messages", "replay", str(message_id), "--reprocess", "--config",
                 str(store.config))
    assert result.exit_code == 0, result.output
    assert "RECEIVED" in result.stdout
    [row] = store.rows(select(messages.c.status, messages.c.error)
                       .where(messages.c.id == message_id))
    assert (row.status, row.error) == (st.RECEIVED, None)
    last = store.rows(select(journal.c.status, journal.c.detail)
                      .where(journal.c.message_id == message_id)
                      .order_by(journal.c.id.desc()).limit(1))
    assert last[0].status == st.RECEIVED and "reprocess" in last[0].detail


def test_replay_several_ids_reports_each_and_fails_if_one_is_refused(
        populated: Populated, tmp_path: Path) -> None:
    store = populated.copy(tmp_path)
    good, unknown = store.ids["REFUSE-4"], 999999
    result = cli("messages", "replay", str(good), str(unknown), "--config", str(store.config))
    assert result.exit_code == 1
    assert f"message {good}: 1 delivery(ies) queued again" in result.stdout
    assert f"message {unknown} does not exist" in result.stderr
    [row] = store.rows(select(deliveries.c.status).where(
        deliveries.c.message_id == good, deliveries.c.destination == "sink"))
    assert row.status == st.QUEUED


def test_messages_list_piped_gives_whole_values(populated: Populated) -> None:
    """If the output of messages list is not a terminal, then each message is one
    tab-separated line with every value whole, not a table cut to 80 columns."""
    result = cli("messages", "list", "--config", str(populated.config))
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert lines[0] == ["id", "received", "channel", "type", "control id", "status", "error"]
    rows = json.loads(cli("messages", "list", "--json", "--config",
                          str(populated.config)).stdout)
    assert [(line[0], line[2], line[3], line[4], line[5], line[6]) for line in lines[1:]] == [
        (str(row["id"]), row["channel"], row["message_type"] or "", row["control_id"] or "",
         row["status"], " ".join((row["error"] or "").split())) for row in rows]


def test_status_table_shows_which_process_holds_which_lane(tmp_path: Path) -> None:
    """If engine processes hold delivery lanes (and one lease ran out), then the status table
    names each process with its lanes, and the lanes whose lease ran out as held by nobody."""
    from engine.delivery import claims

    config = simple_config(tmp_path)
    assert cli("db", "upgrade", "--config", str(config)).exit_code == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as conn:
        claims.claim(conn, "chu-1/4242/1.0", [("adt", "dpi", 0), ("adt", "dpi", 1)], 60.0)
        claims.claim(conn, "chu-2/77/2.0", [("adt", "archive", 0)], -1.0)  # ran out
    engine.dispose()
    result = cli("status", "--config", str(config))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "chu-" in line or "nobody" in line]
    assert len(lines) == 2, result.stdout
    assert "chu-1/4242/1.0" in lines[1] and "adt/dpi/0, adt/dpi/1" in lines[1]
    assert "(nobody)" in lines[0] and "adt/archive/0" in lines[0]
    assert "chu-2" not in result.stdout


def test_status_lists_engine_processes_and_marks_the_stale_ones(tmp_path: Path) -> None:
    """If two processes have rows, one beating now and one silent for a minute, then status
    lists both with their roles, the silent one stale (table and JSON)."""
    import time

    from engine.store import migrate
    from engine.store.nodes import HeartbeatOp, NodeRow
    from engine.store.store import make_engine

    config = simple_config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path}/store.db")
    migrate.ensure_current(engine)
    now = time.time()
    rows = [NodeRow(f"n1/{pid}/0", "n1", pid, role, "host-a", now - 100, beat, "9.9")
            for pid, role, beat in ((41, "intake", now), (42, "delivery", now - 60))]
    with engine.begin() as conn:
        HeartbeatOp().apply(conn, rows)
    engine.dispose()

    table = cli("status", "--config", str(config))
    report = json.loads(cli("status", "--json", "--config", str(config)).stdout)

    assert table.exit_code == 0, table.output
    assert "Engine processes" in table.output and "stale" in table.output
    assert [(n["pid"], n["role"], n["stale"]) for n in report["nodes"]] == [
        (41, "intake", False), (42, "delivery", True)]
