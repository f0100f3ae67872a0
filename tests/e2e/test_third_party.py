"""
A third-party HL7 client against the real engine: @medplum/hl7 (npm), whose ``sendAndWait``
with ``ReturnAckCategory.APPLICATION`` waits past the accept ACK (CA) for the application
ACK, sends enhanced-mode messages (MSH-15/16 AL) and must get each one's application ACK,
matched to it by MSA-2. Its connection runs in enhanced mode, so it answers our application
ACKs with a CA of its own, which the engine must take for what it is, not for a message.

The package is installed with ``npm install --prefix`` into a cache folder
(``$AIGUILLAGE_NPM_CACHE``, else ``~/.cache/aiguillage/npm``), once per version. Without node,
npm or the registry the test is skipped, saying why, except under ``CI=true``, where it fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.internet import defer, utils
from twisted.trial import unittest

from tests.e2e import harness as h

MEDPLUM = "@medplum/hl7@4.5.2"
SCRIPT = Path(__file__).parent / "node" / "medplum_app_ack.cjs"


def npm_modules(package: str = MEDPLUM) -> Path:
    """The node_modules folder holding ``package``, installed there if needed.

    Raises :class:`unittest.SkipTest` (or fails the test, under CI) when it cannot be had."""
    cache = Path(os.environ.get("AIGUILLAGE_NPM_CACHE")
                 or Path.home() / ".cache" / "aiguillage" / "npm")
    prefix = cache / package.replace("/", "+").replace("@", "")
    modules = prefix / "node_modules"
    if (modules / package.rsplit("@", 1)[0]).is_dir():
        return modules
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{' and '.join(missing)} not found on PATH")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit",
                           "--no-fund", package], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        unavailable(f"npm install {package} failed: {done.stderr.strip()[-500:]}")
    return modules


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        raise AssertionError(f"the third-party client is required under CI: {reason}")
    raise unittest.SkipTest(f"third-party client unavailable ({reason}); it runs under CI")


class MedplumTestsMixin(h.EngineCase):

    @defer.inlineCallbacks
    def test_medplum_send_and_wait_gets_the_application_ack_of_its_message(self):
        modules = npm_modules()
        config = self.config(None, extra_destinations=[
            {"name": "out", "type": "file", "directory": str(self.directory / "out")}])
        engine, port = yield self.engine(config)

        out, err, code = yield utils.getProcessOutputAndValue(
            shutil.which("node") or "node", [str(SCRIPT), str(modules), str(port), "MP-1", "MP-2"],
            env=dict(os.environ))

        self.assertEqual(code, 0, f"the node client failed: {err.decode(errors='replace')}")
        answers = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        self.assertEqual([(a["sent"], a["msa1"], a["msa2"], a["msh15"]) for a in answers],
                         [("MP-1", "AA", "MP-1", "NE"), ("MP-2", "AA", "MP-2", "NE")])
        # The client's CAs answering our application ACKs were consumed, not stored.
        rows = yield h.stored_messages(engine)
        self.assertEqual([row["control_id"] for row in rows], ["MP-1", "MP-2"])


def test_a_missing_client_skips_outside_ci_and_fails_under_ci(monkeypatch) -> None:
    import pytest

    monkeypatch.setenv("CI", "false")
    with pytest.raises(unittest.SkipTest, match="runs under CI"):
        unavailable("npm not found on PATH")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(AssertionError, match="required under CI: npm not found"):
        unavailable("npm not found on PATH")


class SQLiteMedplumTests(MedplumTestsMixin, unittest.TestCase):
    backend = "sqlite"


if __name__ == "__main__":  # pragma: no cover - install the client ahead of a run
    print(npm_modules(*sys.argv[1:2]))
