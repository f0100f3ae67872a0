"""
The ``aiguillage`` command, as an operator uses it.

Commands that only read or write the store (check-config, db upgrade, status, messages) run
in-process with click's CliRunner. ``run`` and ``send`` run Twisted's reactor, which runs once
per process, so they run as subprocesses: ``send`` against a loopback MLLP server in a thread
of the test process, and the engine (to fill a store with real content once per module).

Exit codes under test: 0 success, 1 the operation failed, 2 bad usage or configuration,
3 the store or a peer could not be reached.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from engine import status as st
from engine.cli.main import main
from engine.store import migrate
from engine.store.schema import deliveries, journal, messages
from engine.synthetic import adt_message, control_id_of, oru_message
from mllp.ack import build_ack, parse_ack
from mllp.header import HeaderError, read_header

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------

def cli(*args: str) -> Result:
    """Run the command in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def cli_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the command in a process of its own (needed when it runs the reactor)."""
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frame(payload: bytes) -> bytes:
    return b"\x0b" + payload + b"\x1c\r"


def exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    """Send each payload on one connection, waiting for its ACK; the ACK payloads."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for payload in payloads:
            sock.sendall(frame(payload))
            data = b""
            while not data.endswith(b"\x1c\r"):
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the ACK"
                data += chunk
            answers.append(data[data.index(b"\x0b") + 1:-2])
    return answers


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class LoopbackMLLPServer:
    """A downstream MLLP system in a thread: records payloads, answers AA, or AR for MSH-10s
    starting with ``REFUSE``."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while True:
                    try:
                        chunk = self.request.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\x1c\r" in buffer:
                        raw, buffer = buffer.split(b"\x1c\r", 1)
                        payload = raw[raw.index(b"\x0b") + 1:]
                        outer.received.append(payload)
                        self.request.sendall(frame(outer.answer(payload)))

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(payload: bytes) -> bytes:
        header = read_header(payload)
        code = "AR" if header.control_id.startswith("REFUSE") else "AA"
        return build_ack(header, code, text="refused by test" if code == "AR" else "",
                         control_id="SRV1", timestamp="20260101000000")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def mllp_server() -> Iterator[LoopbackMLLPServer]:
    server = LoopbackMLLPServer()
    try:
        yield server
    finally:
        server.close()


# -- configurations --------------------------------------------------------------------

def write_config(root: Path, channels: dict[str, str], *, url: str = "sqlite:///store.db") -> Path:
    (root / "channels").mkdir(parents=True, exist_ok=True)
    for name, text in channels.items():
        (root / "channels" / f"{name}.yaml").write_text(textwrap.dedent(text))
    config = root / "engine.yaml"
    config.write_text(textwrap.dedent(f"""\
        node: cli-test
        store:
          url: "{url}"
        channels:
          - channels/*.yaml
        log_level: warning
        """))
    return config


def file_channel(name: str, port: int = 0) -> str:
    return f"""\
        name: {name}
        source:
          type: mllp
          port: {port}
        destinations:
          - name: archive
            type: file
            directory: ../out/{name}
        """


def simple_config(root: Path, url: str = "sqlite:///store.db") -> Path:
    return write_config(root, {"adt": file_channel("adt"), "lab": file_channel("lab")}, url=url)


# -- check-config ----------------------------------------------------------------------

def test_check_config_ok_lists_channels(tmp_path: Path) -> None:
    config = simple_config(tmp_path)
    result = cli("check-config", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "2 channel(s): adt, lab" in result.stdout
    assert result.stderr == ""


def test_check_config_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"good": file_channel("good"), "bad": """\
        name: Bad Name
        source:
          type: mllp
          port: 99999
        destinations:
          - name: out
            type: file
            directory: out
            retry:
              max_delay: 5 parsecs
          - name: other
            type: carrier-pigeon
        """})
    bad = (tmp_path / "channels" / "bad.yaml").resolve()
    result = cli("check-config", "--config", str(config))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "configuration errors (4):" in result.stderr
    located = []
    for line in result.stderr.splitlines()[1:]:
        match = re.match(r"(?P<file>.+?):(?P<line>\d+): (?P<field>[^:]+): \S", line)
        assert match, f"an error without file:line: {line!r}"
        located.append((Path(match["file"]).resolve(), int(match["line"]), match["field"]))
    assert located == [(bad, 1, "name"), (bad, 4, "source.port"),
                       (bad, 10, "destinations[0].retry.max_delay"),
                       (bad, 12, "destinations[1].type")]
    assert "99999" in result.stderr and "5 parsecs" in result.stderr
    assert "carrier-pigeon" in result.stderr


def test_run_with_a_broken_configuration_exits_2_before_listening(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, {"bad": file_channel("bad", port).replace(
        "directory:", "retry: {max_attempts: 0}\n            directory:")})
    result = cli("run", "--config", str(config))
    assert result.exit_code == 2
    assert "bad.yaml:" in result.stderr and "max_attempts" in result.stderr
    with socket.socket() as probe:  # nothing was left listening
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_check_config_on_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    result = cli("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 2
    assert "absent.yaml" in result.stderr


# -- db upgrade ------------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_then_is_a_no_op(tmp_path: Path) -> None:
    config = simple_config(tmp_path)
    head = migrate.head_revision()

    first = cli("db", "upgrade", "--config", str(config))
    assert first.exit_code == 0, first.output
    assert f"schema empty -> {head}" in first.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert migrate.current_revision(engine) == head
    finally:
        engine.dispose()

    again = cli("db", "upgrade", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert f"schema {head} -> {head}" in again.stdout


def test_db_upgrade_on_an_unreachable_database_exits_3(tmp_path: Path) -> None:
    config = simple_config(tmp_path, url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    result = cli("db", "upgrade", "--config", str(config))
    assert result.exit_code == 3
    assert "upgrade failed" in result.stderr


# -- a store with known content, filled once by the real engine -------------------------

@dataclass
class Populated:
    """A stopped engine's directory: its config, its SQLite store, and what was sent."""

    root: Path
    ids: dict[str, int] = field(default_factory=dict)  # control id (or "garbage") -> message id
    payloads: dict[str, bytes] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "engine.yaml"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.root / 'store.db'}"

    def copy(self, target: Path) -> "Populated":
        """The same content in ``target``, for tests that change the store."""
        shutil.copytree(self.root, target / "copy")
        return Populated(target / "copy", dict(self.ids), dict(self.payloads))

    def rows(self, query: Any) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(query))
        finally:
            engine.dispose()


GOOD = [adt_message(1, patient=1), adt_message(2, patient=2), adt_message(3, patient=1)]
REFUSED = adt_message(4, patient=3).replace(b"|ADT000000004|", b"|REFUSE-4|")
LAB = [oru_message(10, results=3), oru_message(11, results=3)]
GARBAGE = b"NOT HL7 :thumbs_up: [bold]AT ALL[/bold]\r"


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
        if engine.poll() is None:
            engine.terminate()
            try:
                engine.wait(15)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait(5)
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


# -- send ------------------------------------------------------------------------------

def ack_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r".+#\d+: ", line)]


def test_send_prints_each_ack_and_exits_0_when_all_are_accepted(
        tmp_path: Path, mllp_server: LoopbackMLLPServer) -> None:
    first, second = tmp_path / "a.hl7", tmp_path / "b.hl7"
    # two messages in one LF file, one in a CR file
    first.write_bytes((GOOD[0] + GOOD[1]).replace(b"\r", b"\n"))
    second.write_bytes(GOOD[2])
    result = cli_process("send", "--port", str(mllp_server.port), "--timeout", "10",
                         str(first), str(second))

    assert result.returncode == 0, result.stdout + result.stderr
    assert ack_lines(result.stdout) == [
        f"{first}#1: AA {control_id_of(GOOD[0])}",
        f"{first}#2: AA {control_id_of(GOOD[1])}",
        f"{second}#1: AA {control_id_of(GOOD[2])}",
    ]
    assert f"3 accepted, 0 refused, 0 not answered (127.0.0.1:{mllp_server.port})" \
        in result.stdout
    assert mllp_server.received == GOOD  # split into messages, CR segments, in order


def test_send_exits_1_when_a_message_is_refused(tmp_path: Path,
                                                mllp_server: LoopbackMLLPServer) -> None:
    path = tmp_path / "mixed.hl7"
    path.write_bytes(GOOD[0] + REFUSED + GOOD[1])
    result = cli_process("send", "--port", str(mllp_server.port), str(path))

    assert result.returncode == 1, result.stdout + result.stderr
    lines = ack_lines(result.stdout)
    assert lines[0] == f"{path}#1: AA {control_id_of(GOOD[0])}"
    assert lines[1].startswith(f"{path}#2: AR REFUSE-4 refused by test")
    assert lines[2] == f"{path}#3: AA {control_id_of(GOOD[1])}"
    assert "2 accepted, 1 refused, 0 not answered" in result.stdout


def test_send_exits_3_when_nothing_listens(tmp_path: Path) -> None:
    path = tmp_path / "one.hl7"
    path.write_bytes(GOOD[0])
    port = free_port()
    result = cli_process("send", "--port", str(port), "--timeout", "5", str(path))

    assert result.returncode == 3, result.stdout + result.stderr
    [line] = ack_lines(result.stdout)
    assert line.startswith(f"{path}#1: ConnectFailed: "), line
    assert "refused" in line, line
    assert f"0 accepted, 0 refused, 1 not answered (127.0.0.1:{port})" in result.stdout


def test_send_generate_sends_distinct_synthetic_messages(
        mllp_server: LoopbackMLLPServer) -> None:
    result = cli_process("send", "--port", str(mllp_server.port), "--generate", "5")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = ack_lines(result.stdout)
    assert [line.split(":")[0] for line in lines] == [f"generated#{i}" for i in range(1, 6)]
    sent_ids = [read_header(p).control_id for p in mllp_server.received]
    assert len(set(sent_ids)) == 5
    assert [line.split()[-1] for line in lines] == sent_ids
    assert all(" AA " in line for line in lines)
    assert "5 accepted, 0 refused, 0 not answered" in result.stdout


def test_send_quiet_prints_only_the_summary(tmp_path: Path,
                                            mllp_server: LoopbackMLLPServer) -> None:
    path = tmp_path / "a.hl7"
    path.write_bytes(GOOD[0])
    result = cli_process("send", "-q", "--port", str(mllp_server.port), str(path))
    assert result.returncode == 0
    assert ack_lines(result.stdout) == []
    assert "1 accepted" in result.stdout


def test_send_unreadable_file_is_sent_as_is_and_refused(tmp_path: Path,
                                                        mllp_server: LoopbackMLLPServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without MSH goes out once as it is; a peer answering AR makes the run fail."""
    def answer(payload: bytes) -> bytes:
        try:
            return LoopbackMLLPServer.answer(payload)
        except HeaderError:
            from mllp.ack import HL7Error, build_nak_without_header
            return build_nak_without_header(HL7Error(100, "no MSH"), "SRV2", "20260101000000")

    monkeypatch.setattr(mllp_server, "answer", answer)
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01 not hl7\n")
    result = cli_process("send", "--port", str(mllp_server.port), str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert mllp_server.received == [b"\x00\x01 not hl7\n"]
    [line] = ack_lines(result.stdout)
    assert "AR" in line and "(ERR 100)" in line


def test_send_without_files_or_generate_is_a_usage_error() -> None:
    result = cli("send")
    assert result.exit_code == 2
    assert "--generate" in result.stderr


def test_send_to_the_real_engine_then_list_it(tmp_path: Path) -> None:
    """`send` into a running engine, then `messages list --control-id` finds it stored."""
    port = free_port()
    config = write_config(tmp_path, {"adt": file_channel("adt", port)})
    log = open(tmp_path / "engine.log", "wb")
    engine = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", "--config",
                               str(config)], cwd=REPO_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=dict(os.environ,
                                                                 PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 20
        while f"listening on port {port}" not in (tmp_path / "engine.log").read_text():
            assert engine.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "engine.log").read_text()
            time.sleep(0.05)
        path = tmp_path / "two.hl7"
        path.write_bytes(GOOD[0] + GOOD[0])
        result = cli_process("send", "--port", str(port), str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        lines = ack_lines(result.stdout)
        # synthetic messages ask for enhanced mode (MSH-15): commit ACKs, CA
        assert lines[0] == f"{path}#1: CA {control_id_of(GOOD[0])}"
        assert lines[1].startswith(f"{path}#2: CA {control_id_of(GOOD[0])} duplicate of message")
        rows = json.loads(cli("messages", "list", "--json", "--config", str(config),
                              "--control-id", control_id_of(GOOD[0])).stdout)
        assert sorted(r["status"] for r in rows) == [st.DUPLICATE, st.TRANSFORMED]
    finally:
        if engine.poll() is None:
            engine.terminate()
            try:
                engine.wait(15)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait(5)
        log.close()
    assert engine.returncode == 0


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
