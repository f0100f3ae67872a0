"""Two processes writing one SQLite store at once: they share its write lock, and the busy
timeout makes each wait for the other's commit instead of failing (nothing is lost)."""
from __future__ import annotations

import subprocess
import sys

from sqlalchemy import func, select

from engine.store import migrate
from engine.store.schema import messages
from engine.store.store import make_engine
from tests.e2e.test_crash import REPO_ROOT, _environment


def test_two_processes_ingest_into_one_sqlite_file(tmp_path):
    """If two processes each commit 3 000 messages in waves of 300 into one SQLite file, then
    every commit succeeds and all 6 000 rows are there, with distinct ids."""
    url = f"sqlite:///{tmp_path}/store.db"
    engine = make_engine(url)
    migrate.ensure_current(engine)
    writers = [subprocess.Popen([sys.executable, "-m", "tests.store.sqlite_writer_process", url,
                                 name, "3000", "300"], cwd=REPO_ROOT, env=_environment(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name in ("w1", "w2")]
    outputs = [w.communicate(timeout=300)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    assert all("ok=3000 failed=0" in out for out in outputs), outputs
    with engine.connect() as conn:
        count, distinct = conn.execute(select(func.count(), func.count(messages.c.id.distinct()))
                                       ).one()
    engine.dispose()
    assert (count, distinct) == (6000, 6000)
