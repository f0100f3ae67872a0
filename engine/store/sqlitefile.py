"""
The SQLite store on disk: who may read it, and how large its write-ahead log may grow.

File modes. The store holds patient data. SQLite creates a database file with the process's
umask (usually 0644: readable by every local user) and gives its ``-wal`` and ``-shm`` files
the database file's mode. So the engine creates the folder 0700 and an empty database file
0600 before SQLite opens it; an existing store readable by group or others is reported with a
WARNING at start (the engine does not change the modes of a file it did not create).

The WAL. SQLite checkpoints (copies the WAL back into the database) after commits, but it can
only start writing the WAL again from its beginning once no reader still uses an older
snapshot; under continuous load some reader always does (lanes, the processor's scans, the
admin), so the file grows in steps without bound. The writer therefore runs, on its own thread
between group commits, a RESTART checkpoint (waits briefly for the readers of old snapshots,
then lets the next commit reuse the WAL from its start) whenever the file passes
``restart_bytes``, and a TRUNCATE checkpoint (empties the file) once the engine goes idle;
``journal_size_limit`` caps what a reset WAL keeps on disk.

test-case-name: tests.store.test_sqlitefile
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes a reset WAL may keep on disk
RESTART_BYTES = 32 * 1024 * 1024  # WAL size past which the writer forces a RESTART checkpoint
CHECKPOINT_BUSY_MS = 500  # how long a checkpoint waits for readers before giving up
RETRY_AFTER = 8  # commits before another try when a reader kept a checkpoint from finishing
CHECK_EVERY = 4  # commits between two reads of the WAL's size
SUFFIXES = ("", "-wal", "-shm")


def prepare(path: Path) -> None:
    """Create the folder (0700) and an empty database file (0600) when they do not exist."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=DIRECTORY_MODE)
        os.chmod(folder, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)
    os.close(fd)


def readable_by_others(path: Path) -> list[str]:
    """The store's files (database, -wal, -shm) that group or others may read or write."""
    found = []
    for suffix in SUFFIXES:
        name = Path(f"{path}{suffix}")
        try:
            mode = stat.S_IMODE(name.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append(f"{name} ({mode:04o})")
    return found


def warn_if_exposed(path: Path) -> None:
    """Log a WARNING naming each store file readable by others, and the fix."""
    exposed = readable_by_others(path)
    if exposed:
        log.warning("the store holds patient data but these files are open to other local "
                    "users: %s; run `chmod 600` on them (and `chmod 700` on their folder)",
                    ", ".join(exposed))


class WALCheckpointer:
    """Keeps the WAL of one SQLite database bounded; called from the writer thread only."""

    def __init__(self, engine: Any, path: Path, restart_bytes: int = RESTART_BYTES):
        self._engine = engine
        self._wal = f"{path}-wal"  # a str: os.stat of it after every commit, no Path
        self._restart_bytes = restart_bytes
        self.checkpoints = 0
        self.busy = 0  # checkpoints that could not finish because of a reader
        self._skip = 0  # commits left before the WAL's size is read again

    def wal_bytes(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def after_commit(self, _committed: Any = None) -> None:
        """Between commits: a RESTART checkpoint when the WAL passed its bound.

        The size is read every ``CHECK_EVERY`` commits, not after each: a system call per
        group commit for a bound that a few commits more overshoot by little (and every
        ``RETRY_AFTER`` commits after a checkpoint a reader kept from finishing).
        """
        if self._skip:
            self._skip -= 1
            return
        self._skip = CHECK_EVERY - 1
        if self.wal_bytes() > self._restart_bytes and not self.checkpoint("RESTART"):
            self._skip = RETRY_AFTER

    def idle(self) -> None:
        """Nothing to write: empty the WAL (TRUNCATE) if it holds anything."""
        if self.wal_bytes() > 0:
            self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str) -> bool:
        """Run ``PRAGMA wal_checkpoint(mode)``; whether it completed (no reader in the way)."""
        with self._engine.connect() as conn:  # no transaction: a checkpoint runs outside one
            raw = conn.connection.dbapi_connection
            raw.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
            try:
                busy = raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
            finally:
                raw.execute("PRAGMA busy_timeout=30000")
        self.checkpoints += 1
        self.busy += bool(busy)
        return not busy
