"""
The ``aiguillage xds`` sessions of docs/xds.md run against a live built-in registry.

Each ``<!-- xds-session: example=NAME [down] -->`` console block runs its ``$ aiguillage``
lines as ``python -m engine.cli.main`` in a directory holding configuration NAME of the docs
(tests/test_docs.py's examples), whose ``http://127.0.0.1:8080`` is replaced by a loopback
server (StoreXDSHandler over xds/registry on SQLite) or, with ``down``, by a port where
nothing listens. Every line shown after a command must be a line it printed (trailing blanks
aside; ``…`` stands for any text), and ``$ echo $?`` checks its exit code. The
directory holds the files the page names: the ANS LDL-SES CDA, an XDM zip and two hostile
zips built by tests/xds/xdm_builders.py.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, threads
from twisted.trial import unittest

from engine.store import migrate
from engine.store.store import make_engine
from tests.e2e.harness import PortReservation, REPO_ROOT
from tests.test_docs import ALL_EXAMPLES, write_example
from tests import standards
from tests.xds.http_fixtures import listen, xds_site
from tests.xds.store_handler import StoreXDSHandler
from tests.xds.xdm_builders import bomb_zip, traversal_zip, xdm_zip

PAGE = REPO_ROOT / "docs" / "xds.md"
SHOWN_BASE = "http://127.0.0.1:8080"
_SESSION = re.compile(r"<!-- xds-session: (.*?) -->\s*\n```console\n(.*?)^```", re.M | re.S)
SESSIONS = [(match.group(1).split(), match.group(2))
            for match in _SESSION.finditer(PAGE.read_text(encoding="utf-8"))]


def commands(session: str) -> list[tuple[str, list[str], int | None]]:
    """(command line, the lines shown after it, the exit code shown or None)."""
    found: list = []
    for line in session.splitlines():
        if line.startswith("$ aiguillage "):
            found.append([line, [], None])
        elif line.startswith("$ echo $?"):
            found[-1][2] = "next"
        elif found and found[-1][2] == "next":
            found[-1][2] = int(line)
        elif found:
            found[-1][1].append(line)
    return [tuple(item) for item in found]


def matches(expected: str, printed: list[str]) -> bool:
    """Whether a shown line is a printed one; ``…`` in it stands for any text."""
    pattern = re.compile(".*".join(re.escape(part) for part in expected.rstrip().split("…")))
    return any(pattern.fullmatch(line) for line in printed)


def test_the_page_has_sessions():
    assert len(SESSIONS) >= 2 and all(commands(session) for _, session in SESSIONS)


class DocumentedSessionTests(unittest.TestCase):

    timeout = 180

    @defer.inlineCallbacks
    def run_session(self, settings: list[str], session: str):
        directory = Path(tempfile.mkdtemp(prefix="aiguillage-xds-cli-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        example = dict(item.partition("=")[::2] for item in settings)["example"]
        write_example(ALL_EXAMPLES[f"xds.md:{example}"], directory)
        if "down" in settings:
            reservation = PortReservation()
            self.addCleanup(reservation.close)
            base = f"http://127.0.0.1:{reservation.port}"
        else:
            engine = make_engine(f"sqlite:///{directory / 'registry.db'}")
            self.addCleanup(engine.dispose)
            yield threads.deferToThread(migrate.ensure_current, engine)
            base = yield listen(self, xds_site(StoreXDSHandler(engine)))
        config = directory / "engine.yaml"
        config.write_text(config.read_text().replace(SHOWN_BASE, base))
        shutil.copy(standards.sample("cda/examples/ans/LDL-SES_2022.01.xml"),
                    directory / "ldl-ses.xml")
        for name, data in (("IHE_XDM.ZIP", xdm_zip()), ("evil.zip", traversal_zip()),
                           ("bomb.zip", bomb_zip())):
            (directory / name).write_bytes(data)
        for line, shown, code in commands(session):
            args = shlex.split(line[len("$ aiguillage "):])
            done = yield threads.deferToThread(
                subprocess.run, [sys.executable, "-m", "engine.cli.main", *args],
                cwd=directory, capture_output=True, text=True, timeout=120,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
            printed = [text.rstrip() for text in (done.stdout + done.stderr).splitlines()]
            for expected in shown:
                self.assertTrue(matches(expected.replace(SHOWN_BASE, base), printed),
                                f"`{line}` should print\n  {expected}\nbut printed\n  "
                                + "\n  ".join(printed))
            if code is not None:
                self.assertEqual(done.returncode, code, f"`{line}`: {printed}")

    def test_the_sessions(self):
        """If a documented command prints or exits otherwise, then the page is wrong."""
        return defer.gatherResults([self.run_session(settings, session)
                                    for settings, session in SESSIONS], consumeErrors=True)
