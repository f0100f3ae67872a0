"""
The ``file`` destination's batches as anonymous files (O_TMPFILE), named once flushed.

test-case-name: tests.channels.test_file_unnamed
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from channels import file_unnamed, file_writes

pytestmark = pytest.mark.skipif(not file_unnamed.usable(False),
                                reason="no O_TMPFILE or /proc/self/fd here")


def _batch(tmp_path, count, prefix="f"):
    return [(str(tmp_path / f"{prefix}{n}.hl7"), f"MSH|{n}".encode()) for n in range(count)]


@pytest.fixture
def syncfs_seen(monkeypatch):
    """Every syncfs of a batch, with what its directory held when it was called."""
    seen = []
    real = file_writes._SYNCFS or (lambda fd: os.fsync(fd) or 0)

    def recording(descriptor):
        seen.append(sorted(os.listdir(f"/proc/self/fd/{descriptor}")))
        return real(descriptor)
    monkeypatch.setattr(file_writes, "_SYNCFS", recording)
    return seen


def test_data_is_flushed_before_any_name_and_names_before_the_batch_is_reported(
        tmp_path, syncfs_seen, monkeypatch):
    """If a batch of four is written, then the first flush finds the directory without any
    name (no temporary one either), the second finds the four final names, no file is
    flushed one by one, and each file holds its payload."""
    fsynced = []
    monkeypatch.setattr(file_writes.os, "fsync", fsynced.append)
    results = file_unnamed.write_batch(_batch(tmp_path, 4), fsync=True)
    assert results == [str(tmp_path / f"f{n}.hl7") for n in range(4)]
    assert syncfs_seen == [[], [f"f{n}.hl7" for n in range(4)]]
    assert fsynced == []
    assert (tmp_path / "f2.hl7").read_bytes() == b"MSH|2"


def test_a_missing_directory_is_created_private(tmp_path, syncfs_seen):
    """If the directory does not exist, then it is created 0700 and the files go in it."""
    folder = tmp_path / "out" / "adt"
    results = file_unnamed.write_batch(_batch(folder, 2), fsync=True)
    assert len(results) == 2 and os.stat(folder).st_mode & 0o777 == 0o700
    assert sorted(os.listdir(folder)) == ["f0.hl7", "f1.hl7"]


def test_a_file_written_again_replaces_the_old_one(tmp_path, syncfs_seen):
    """If a final name exists already (a delivery retried after a crash), then its file is
    replaced by the new one and no temporary name is left behind."""
    (tmp_path / "f1.hl7").write_bytes(b"old")
    results = file_unnamed.write_batch(_batch(tmp_path, 3), fsync=True)
    assert results == [str(tmp_path / f"f{n}.hl7") for n in range(3)]
    assert (tmp_path / "f1.hl7").read_bytes() == b"MSH|1"
    assert sorted(os.listdir(tmp_path)) == ["f0.hl7", "f1.hl7", "f2.hl7"]


def test_a_name_taken_by_a_directory_ends_the_batch(tmp_path, syncfs_seen):
    """If the second name is a directory, then the first file is written, the second fails
    with EISDIR, the third is not named, and nothing else is left in the directory."""
    (tmp_path / "f1.hl7").mkdir()
    results = file_unnamed.write_batch(_batch(tmp_path, 3), fsync=True)
    assert results[0] == str(tmp_path / "f0.hl7")
    assert isinstance(results[1], OSError) and results[1].errno == errno.EISDIR
    assert len(results) == 2
    assert sorted(os.listdir(tmp_path)) == ["f0.hl7", "f1.hl7"]


def test_a_failed_flush_leaves_no_file(tmp_path, monkeypatch):
    """If flushing the data fails (EIO), then the batch is one failure and nothing is named."""
    def failing(descriptor):
        file_writes.ctypes.set_errno(errno.EIO)
        return -1
    monkeypatch.setattr(file_writes, "_SYNCFS", failing)
    results = file_unnamed.write_batch(_batch(tmp_path, 3), fsync=True)
    assert len(results) == 1 and results[0].errno == errno.EIO
    assert os.listdir(tmp_path) == []


def test_a_process_that_dies_before_naming_its_files_leaves_nothing(tmp_path):
    """If the process is killed while its batch is being flushed, then the directory holds
    no file at all, not even a temporary one (named temporary files would stay behind)."""
    script = textwrap.dedent(f"""
        import os
        from channels import file_unnamed, file_writes
        file_writes._SYNCFS = lambda descriptor: os._exit(3)
        file_unnamed.write_batch([({str(tmp_path / 'a.hl7')!r}, b"MSH|a")], fsync=True)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ended = subprocess.run([sys.executable, "-c", script], cwd=root)
    assert ended.returncode == 3
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask, mode", [(0o077, 0o640), (0o022, 0o600), (0o000, 0o644)])
def test_each_file_gets_file_mode_exactly_whatever_the_umask(tmp_path, umask, mode):
    """If a batch is written under a umask that takes bits of file_mode away (or none), then
    every file still has file_mode exactly, and its whole payload."""
    previous = os.umask(umask)
    try:
        payloads = [(str(tmp_path / f"f{n}.hl7"), bytes([n]) * (70_000 + n)) for n in range(3)]
        results = file_unnamed.write_batch(payloads, fsync=False, file_mode=mode)
    finally:
        os.umask(previous)
    assert [os.stat(r).st_mode & 0o777 for r in results] == [mode] * 3
    assert [os.path.getsize(r) for r in results] == [70_000, 70_001, 70_002]


def test_a_file_system_without_o_tmpfile_gets_named_temporary_files(tmp_path, monkeypatch,
                                                                     syncfs_seen):
    """If the file system refuses O_TMPFILE (EOPNOTSUPP), then the batch is written through
    named temporary files, renamed, and the directory is remembered for the next batches."""
    monkeypatch.setattr(file_unnamed, "_NAMED_ONLY", set())
    refusals = []

    def refused(*args):
        refusals.append(args)
        raise OSError(errno.EOPNOTSUPP, "not supported")
    monkeypatch.setattr(file_unnamed, "_write_unnamed", refused)
    first = file_unnamed.write_batch(_batch(tmp_path, 2), fsync=True)
    second = file_unnamed.write_batch(_batch(tmp_path, 2, "g"), fsync=True)
    assert len(first) == 2 and len(second) == 2
    assert len(refusals) == 1
    assert syncfs_seen[0] and all(name.startswith(".f0.hl7.") or name.startswith(".f1.hl7.")
                                  for name in syncfs_seen[0])
    assert sorted(os.listdir(tmp_path)) == ["f0.hl7", "f1.hl7", "g0.hl7", "g1.hl7"]


def test_usable_only_with_a_syncfs_when_flushing(monkeypatch):
    """If there is no syncfs, then batches that flush are not written this way (an
    anonymous file cannot be reopened to be flushed alone); without flushes they are."""
    monkeypatch.setattr(file_writes, "_SYNCFS", None)
    assert not file_unnamed.usable(True)
    assert file_unnamed.usable(False)


@pytest.fixture
def links_by_path(monkeypatch):
    """Every link made through a path (/proc/self/fd or another), by its source."""
    seen = []
    real = os.link

    def recording(source, *args, **kwargs):
        seen.append(source)
        return real(source, *args, **kwargs)
    monkeypatch.setattr(file_unnamed.os, "link", recording)
    return seen


def _kernel_links_by_descriptor() -> bool:
    """Whether this kernel lets this process link an open file by its descriptor."""
    import tempfile

    linkat = file_unnamed._load_linkat()
    if linkat is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        descriptor = os.open(".", os.O_WRONLY | os.O_TMPFILE, 0o600, dir_fd=directory)
        try:
            return linkat(descriptor, b"", directory, b"probe", file_unnamed._AT_EMPTY_PATH) == 0
        finally:
            os.close(descriptor)
            os.close(directory)


@pytest.mark.skipif(not _kernel_links_by_descriptor(),
                    reason="this kernel links an open file by its descriptor only with "
                           "CAP_DAC_READ_SEARCH (before 6.10)")
def test_files_are_linked_by_their_descriptor_not_through_proc(tmp_path, monkeypatch,
                                                                links_by_path, syncfs_seen):
    """If the kernel allows it, then a batch's files are named without any path walk through
    /proc/self/fd (no link by path at all), each with its own payload."""
    monkeypatch.setitem(file_unnamed._LINK_BY_DESCRIPTOR, "linkat", file_unnamed._load_linkat())
    results = file_unnamed.write_batch(_batch(tmp_path, 3), fsync=True)
    assert results == [str(tmp_path / f"f{n}.hl7") for n in range(3)]
    assert links_by_path == []
    assert [(tmp_path / f"f{n}.hl7").read_bytes() for n in range(3)] == [
        b"MSH|0", b"MSH|1", b"MSH|2"]


def test_a_kernel_that_refuses_the_descriptor_gets_links_through_proc(tmp_path, monkeypatch,
                                                                      links_by_path):
    """If linkat by descriptor answers ENOENT (a kernel before 6.10, unprivileged), then the
    files are linked through /proc/self/fd, and the descriptor is not tried again."""
    tries = []

    def refusing(*args):
        tries.append(args)
        file_unnamed.ctypes.set_errno(errno.ENOENT)
        return -1
    monkeypatch.setitem(file_unnamed._LINK_BY_DESCRIPTOR, "linkat", refusing)
    first = file_unnamed.write_batch(_batch(tmp_path, 2), fsync=False)
    second = file_unnamed.write_batch(_batch(tmp_path, 2, "g"), fsync=False)
    assert len(first) == 2 and len(second) == 2 and len(tries) == 1
    assert len(links_by_path) == 4 and all(s.startswith("/proc/self/fd/") for s in links_by_path)
    assert sorted(os.listdir(tmp_path)) == ["f0.hl7", "f1.hl7", "g0.hl7", "g1.hl7"]


def test_a_batchs_files_are_closed_together_and_none_is_left_open(tmp_path, syncfs_seen,
                                                                  monkeypatch):
    """If a batch of twenty is written, then its files are closed in fewer calls than one
    each (runs of consecutive descriptors, os.closerange) and no descriptor is left open."""
    calls = []
    real_close, real_range = os.close, os.closerange
    monkeypatch.setattr(file_unnamed.os, "close", lambda fd: calls.append(fd) or real_close(fd))
    monkeypatch.setattr(file_unnamed.os, "closerange",
                        lambda lo, hi: calls.append((lo, hi)) or real_range(lo, hi))
    open_before = len(os.listdir("/proc/self/fd"))
    results = file_unnamed.write_batch(_batch(tmp_path, 20), fsync=True)
    monkeypatch.undo()
    assert len(results) == 20 and len(calls) < 20
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_closing_runs_leaves_a_descriptor_in_a_gap_open(tmp_path):
    """If the batch's descriptors have a gap that another file holds, then closing them
    leaves that file open and closes every one of the batch's."""
    ours = [os.open(tmp_path, os.O_RDONLY) for _ in range(5)]
    os.close(ours[2])
    other = os.open(tmp_path, os.O_RDONLY)  # the lowest free number: the gap's
    assert other == ours[2]
    batch = ours[:2] + ours[3:]
    file_unnamed._close_all(list(reversed(batch)))
    os.fstat(other)  # still open
    os.close(other)
    for descriptor in batch:
        with pytest.raises(OSError):
            os.fstat(descriptor)
