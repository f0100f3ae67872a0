"""
The ``aiguillage`` command, as an operator uses it: check-config, db upgrade and send (status
and messages are in test_store_commands.py).

Commands that only read or write the store run in-process with click's CliRunner. ``send``
runs Twisted's reactor, which runs once per process, so it runs as a subprocess, against a
loopback MLLP server in a thread of the test process.

Exit codes under test: 0 success, 1 the operation failed, 2 bad usage or configuration,
3 the store or a peer could not be reached.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine

from engine import status as st
from engine.store import migrate
from engine.synthetic import control_id_of
from mllp.header import HeaderError, read_header
from tests.cli.cli_support import (
    GOOD, REFUSED, REPO_ROOT, LoopbackMLLPServer, cli, cli_process, file_channel, free_port,
    simple_config, stop_engine, write_config)


@pytest.fixture
def mllp_server() -> Iterator[LoopbackMLLPServer]:
    server = LoopbackMLLPServer()
    try:
        yield server
    finally:
        server.close()


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
        stop_engine(engine)
        log.close()
    assert engine.returncode == 0
