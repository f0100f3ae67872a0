"""
The ``file`` destination: names from templates, atomic writes in a thread, errors.

test-case-name: tests.channels.test_file_destination
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest

from channels import file_unnamed, file_writes
from channels.file_destination import FileDestination, convert_line_endings
from channels.file_names import (
    FileNamer, check_template, fit_name, name_fields, render, sanitise)
from channels.file_writes import write_atomically
from engine.interfaces import DeliveryContext, DeliveryFailed
from tests.channels.fakes import message

WHO = 'destination "archive" (file)'


def context(**changes) -> DeliveryContext:
    values = dict(channel="adt", message_id=42, delivery_id=7, control_id="C1",
                  message_type="ADT^A01", attempt=1)
    values.update(changes)
    return DeliveryContext(**values)


class FileDestinationTests(unittest.TestCase):
    timeout = 10

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="aiguillage-file-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

    def destination(self, **options) -> FileDestination:
        options.setdefault("directory", os.path.join(self.root, "out"))
        destination = FileDestination("archive", "adt", 0, options, reactor)
        destination.start()
        self.addCleanup(destination.stop)
        return destination

    @defer.inlineCallbacks
    def test_writes_the_payload_under_the_default_name(self):
        """If a message is sent, then its file exists with the bytes, directory created."""
        outcome = yield self.destination().send(message("C1"), context())
        path = os.path.join(self.root, "out", "adt-000000000042.hl7")
        self.assertEqual(outcome.response, os.fsencode(path))
        with open(path, "rb") as written:
            self.assertEqual(written.read(), message("C1"))

    @defer.inlineCallbacks
    def test_no_temporary_file_is_left_behind(self):
        """If several messages are written, then only their final files remain."""
        destination = self.destination(fsync=False)
        for message_id in range(1, 4):
            yield destination.send(message(f"C{message_id}"), context(message_id=message_id))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "out"))),
                         [f"adt-00000000000{n}.hl7" for n in range(1, 4)])

    @defer.inlineCallbacks
    def test_resending_replaces_the_same_file(self):
        """If a delivery is retried after a crash, then the file is rewritten, not doubled."""
        destination = self.destination()
        yield destination.send(b"first\r", context())
        outcome = yield destination.send(b"second\r", context())
        with open(os.fsdecode(outcome.response), "rb") as written:
            self.assertEqual(written.read(), b"second\r")
        self.assertEqual(len(os.listdir(os.path.join(self.root, "out"))), 1)

    @defer.inlineCallbacks
    def test_a_templated_name_is_used(self):
        destination = self.destination(filename="{control_id}_{message_type}.txt")
        outcome = yield destination.send(b"x\r", context(control_id="A/B C"))
        self.assertEqual(os.path.basename(os.fsdecode(outcome.response)), "A_B_C_ADT_A01.txt")

    @defer.inlineCallbacks
    def test_line_endings_are_converted_on_write(self):
        outcome = yield self.destination(line_endings="crlf").send(b"MSH|1\rPID|1\r",
                                                                    context())
        with open(os.fsdecode(outcome.response), "rb") as written:
            self.assertEqual(written.read(), b"MSH|1\r\nPID|1\r\n")

    @defer.inlineCallbacks
    def test_unwritable_directory_is_a_retryable_failure_naming_the_path(self):
        """If the directory lies under a regular file, then ENOTDIR is reported, retryable."""
        blocker = os.path.join(self.root, "not-a-directory")
        with open(blocker, "w"):
            pass
        sent = self.destination(directory=os.path.join(blocker, "out")).send(b"x\r", context())
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertTrue(failed.retryable)
        self.assertIn(f"cannot write {blocker}/out/adt-000000000042.hl7: [ENOTDIR] "
                      "Not a directory", failed.reason)

    @defer.inlineCallbacks
    def test_a_leading_dot_in_msh10_gives_a_visible_file(self):
        """If MSH-10 starts with ".", then the file is not a dot-file a poller would skip."""
        outcome = yield self.destination(filename="{control_id}.hl7").send(
            message(".C1"), context(control_id=".C1"))
        self.assertEqual(os.listdir(os.path.join(self.root, "out")), ["_C1.hl7"])
        self.assertEqual(outcome.response, os.fsencode(os.path.join(self.root, "out",
                                                                    "_C1.hl7")))

    @defer.inlineCallbacks
    def test_a_name_too_long_for_the_file_system_is_cut_to_its_limit(self):
        """If MSH-10 makes a name over NAME_MAX, then the file is written under a cut name."""
        control_id = "X" * 400
        outcome = yield self.destination(filename="{control_id}.hl7").send(
            message("C1"), context(control_id=control_id))
        written = os.listdir(os.path.join(self.root, "out"))
        self.assertEqual(len(written), 1)
        limit = os.pathconf(os.path.join(self.root, "out"), "PC_NAME_MAX")
        self.assertEqual(len(written[0]), limit)
        self.assertTrue(written[0].endswith(".hl7"))
        self.assertEqual(os.path.basename(outcome.response), os.fsencode(written[0]))

    @defer.inlineCallbacks
    def test_files_are_0600_and_created_directories_0700_whatever_the_umask(self):
        previous = os.umask(0o022)
        self.addCleanup(os.umask, previous)
        outcome = yield self.destination(directory=os.path.join(self.root, "a", "b")).send(
            message("C1"), context())
        self.assertEqual(os.stat(outcome.response).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.join(self.root, "a", "b")).st_mode & 0o777, 0o700)

    @defer.inlineCallbacks
    def test_configured_modes_are_applied_exactly(self):
        """If another account must read the files, then file_mode and directory_mode say so."""
        previous = os.umask(0o077)
        self.addCleanup(os.umask, previous)
        outcome = yield self.destination(file_mode="0640", directory_mode="0750").send(
            message("C1"), context())
        self.assertEqual(os.stat(outcome.response).st_mode & 0o777, 0o640)
        self.assertEqual(os.stat(os.path.join(self.root, "out")).st_mode & 0o777, 0o750)

    @defer.inlineCallbacks
    def test_a_name_taken_by_a_directory_is_a_permanent_failure(self):
        """If the final name is a directory, then retrying cannot help: not retryable."""
        os.makedirs(os.path.join(self.root, "out", "adt-000000000042.hl7"))
        sent = self.destination().send(b"x\r", context())
        failed = yield self.assertFailure(sent, DeliveryFailed)
        self.assertFalse(failed.retryable)
        self.assertIn("[EISDIR]", failed.reason)

    def test_send_before_start_is_refused(self):
        destination = FileDestination("archive", "adt", 0, {"directory": self.root}, reactor)
        return self.assertFailure(destination.send(b"x\r", context()), RuntimeError)


@pytest.mark.parametrize("template, complaint", [
    ("{patient}.hl7", 'unknown placeholder "{patient}"'),
    ("{channel.upper}.hl7", 'unknown placeholder "{channel.upper}"'),
    ("{}.hl7", 'unknown placeholder "{}"'),
    ("../{channel}.hl7", 'must not contain "/", "\\" or ".."'),
    ("sub/{channel}.hl7", "must not contain"),
    ("{channel", "is malformed"),
    ("{channel:012d}.hl7", "cannot be used"),
])
def test_bad_templates_are_refused_at_build_time(template, complaint):
    """If a template names unknown fields or could leave the directory, then it is refused."""
    with pytest.raises(ValueError) as raised:
        FileDestination("archive", "adt", 0, {"directory": "/tmp", "filename": template},
                        reactor)
    assert str(raised.value).startswith(f"{WHO}: ")
    assert complaint in str(raised.value)


def test_bad_line_endings_are_refused():
    with pytest.raises(ValueError, match="line_endings must be one of cr, lf, crlf"):
        FileDestination("archive", "adt", 0, {"directory": "/tmp", "line_endings": "lfcr"},
                        reactor)


def test_check_template_accepts_format_specs_on_numbers():
    check_template("{date}-{message_id:08d}-{control_id}.hl7", WHO)


def test_every_placeholder_is_filled_and_sanitised():
    """If the template uses every field, then unsafe characters become underscores."""
    fields = name_fields(context(control_id="A/B C", message_type=None), "archive",
                         1_704_164_645)  # 2024-01-02 03:04:05 UTC
    name = render("{destination}_{channel}_{message_id}_{delivery_id}_{control_id}_"
                  "{message_type}_{date}_{time}.txt", fields)
    assert name == "archive_adt_42_7_A_B_C_unknown_20240102_030405.txt"


@pytest.mark.parametrize("template", [
    "{channel}-{message_id:012d}.hl7",
    "{destination}_{channel}_{message_id}_{delivery_id}_{control_id}_{message_type}_{date}_"
    "{time}.txt",
    "{control_id}", "{date}-{time}", "fixed.hl7",
])
@pytest.mark.parametrize("control_id, message_type", [
    ("A/B C", None), ("..x", "ADT^A01^ADT_A01"), ("é\u00a0ü", ""), ("ok.1_2-3", "ORU")])
def test_file_namer_renders_what_name_fields_and_render_give(template, control_id,
                                                             message_type):
    """If a destination names its files with a FileNamer (only the fields its template
    uses), then every name is the one name_fields and render give, unsafe characters and
    leading dots included."""
    check_template(template, WHO)
    given = context(control_id=control_id, message_type=message_type, channel="adt in")
    expected = render(template, name_fields(given, "arch ive", 1_704_164_645))
    assert FileNamer(template, "arch ive").name(given, 1_704_164_645) == expected


def test_sanitise_replaces_each_unsafe_character_by_one_underscore():
    """If a value holds characters outside [A-Za-z0-9._-], accented or beyond the BMP
    included, then each of them becomes one underscore."""
    assert sanitise("é\U0001F600a b\tZ") == "__a_b_Z"


def test_render_makes_leading_dots_underscores():
    """If MSH-10 starts with dots, then the name does not: pollers skip dot-files."""
    assert render("{control_id}.hl7", {"control_id": ".hidden"}) == "_hidden.hl7"
    assert render("{control_id}", {"control_id": ".."}) == "__"
    assert render("{control_id}", {"control_id": "a.b"}) == "a.b"


def test_render_refuses_an_empty_name():
    with pytest.raises(ValueError, match="unusable name ''"):
        render("{control_id}", {"control_id": ""})


def test_fit_name_keeps_the_extension_and_tells_long_names_apart():
    """If a name is over the limit, then it is cut to it, extension kept, digest added."""
    one, other = fit_name("A" * 300 + "1.hl7", 255), fit_name("A" * 300 + "2.hl7", 255)
    assert len(one.encode()) == 255 and one.endswith(".hl7") and one.startswith("AAAA")
    assert one != other
    assert fit_name("short.hl7", 255) == "short.hl7"
    assert len(fit_name("é" * 200 + ".hl7", 255).encode()) <= 255


@pytest.mark.parametrize("option, value", [("file_mode", "rw"), ("file_mode", "1777"),
                                           ("directory_mode", "9")])
def test_bad_modes_are_refused_at_build_time(option, value):
    with pytest.raises(ValueError, match=f"{option} must be"):
        FileDestination("archive", "adt", 0, {"directory": "/tmp", option: value}, reactor)


def test_sanitise_keeps_safe_characters_and_marks_absent_values():
    assert sanitise("ADT^A01") == "ADT_A01"
    assert sanitise("ok.1_2-3") == "ok.1_2-3"
    assert sanitise(None) == sanitise("") == "unknown"


@pytest.mark.parametrize("ending, expected", [
    (b"\r", b"A\rB\r\nC\n"),  # cr: byte for byte
    (b"\n", b"A\nB\nC\n"),
    (b"\r\n", b"A\r\nB\r\nC\r\n"),
])
def test_convert_line_endings(ending, expected):
    assert convert_line_endings(b"A\rB\r\nC\n", ending) == expected


def test_write_atomically_removes_its_temporary_file_on_failure(tmp_path):
    """If the final name cannot be taken, then no temporary file is left behind."""
    (tmp_path / "taken.hl7").mkdir()  # a directory where the file should go
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "taken.hl7"), b"x", fsync=True)
    assert os.listdir(tmp_path) == ["taken.hl7"]


class FileBatchTests(unittest.TestCase):
    """send_batch: several files written, each flushed, the directory flushed once."""

    timeout = 10
    setUp = FileDestinationTests.setUp
    destination = FileDestinationTests.destination

    @defer.inlineCallbacks
    def test_a_batch_writes_every_file_and_flushes_the_directory_once(self):
        """If three payloads are sent as one batch, then three files are written, each
        outcome names its file, and the directory is flushed once, not three times (on
        Linux by the batch's second syncfs, see channels.file_unnamed)."""
        flushed, synced = [], []
        original, syncfs = file_writes._fsync_directory, file_writes._SYNCFS
        self.patch(file_writes, "_fsync_directory",
                   lambda directory: (flushed.append(directory), original(directory)))
        if syncfs is not None:
            self.patch(file_writes, "_SYNCFS", lambda fd: synced.append(fd) or syncfs(fd))
        destination = self.destination()
        contexts = [context(message_id=n, delivery_id=n) for n in (1, 2, 3)]
        outcomes = yield destination.send_batch([message(f"C{n}") for n in (1, 2, 3)],
                                                contexts)
        names = sorted(os.listdir(destination.directory))
        self.assertEqual(names, [f"adt-{n:012d}.hl7" for n in (1, 2, 3)])
        self.assertEqual([os.path.basename(o.response.decode()) for o in outcomes], names)
        if file_unnamed.usable(True):  # the data, then the names: one syncfs each
            self.assertEqual((flushed, len(synced)), ([], 2))
        else:
            self.assertEqual(flushed, [destination.directory])

    @defer.inlineCallbacks
    def test_a_batch_shows_no_name_until_its_data_is_on_disk(self):
        """If a batch is written where the kernel has O_TMPFILE and syncfs, then while its
        data is being flushed the directory holds no name at all, temporary or final: a
        poller never lists a file of it before it is complete, and a crash then leaves
        nothing behind."""
        if not file_unnamed.usable(True):
            raise unittest.SkipTest("no O_TMPFILE, /proc/self/fd or syncfs here")
        seen, syncfs = [], file_writes._SYNCFS
        destination = self.destination()
        os.makedirs(destination.directory)
        self.patch(file_writes, "_SYNCFS", lambda fd: (
            seen.append(sorted(os.listdir(destination.directory))), syncfs(fd))[1])
        yield destination.send_batch([message("C1"), message("C2")],
                                     [context(message_id=1), context(message_id=2)])
        self.assertEqual(seen, [[], [f"adt-{n:012d}.hl7" for n in (1, 2)]])

    @defer.inlineCallbacks
    def test_a_file_that_can_never_be_written_ends_the_batch(self):
        """If the second file's name is taken by a directory (EISDIR, permanent), then the
        first is written, the second is refused for good (not retryable) and the third is not
        attempted."""
        destination = self.destination(filename="{control_id}")
        os.makedirs(os.path.join(destination.directory, "C2"))
        contexts = [context(control_id=c) for c in ("C1", "C2", "C3")]
        outcomes = yield destination.send_batch([message("C1")] * 3, contexts)
        self.assertEqual(len(outcomes), 2)
        self.assertIsInstance(outcomes[1], DeliveryFailed)
        self.assertFalse(outcomes[1].retryable)
        self.assertEqual(sorted(os.listdir(destination.directory)), ["C1", "C2"])
        self.assertTrue(os.path.isdir(os.path.join(destination.directory, "C2")))

    @defer.inlineCallbacks
    def test_an_unwritable_directory_fails_the_first_file_retryably(self):
        """If the directory cannot be written, then the batch's outcome is one retryable
        failure naming the path."""
        blocker = os.path.join(self.root, "blocker")
        open(blocker, "w").close()
        destination = self.destination(directory=os.path.join(blocker, "out"))
        outcomes = yield destination.send_batch([message("C1")] * 2,
                                                [context(), context(message_id=43)])
        self.assertEqual(len(outcomes), 1)
        self.assertTrue(outcomes[0].retryable)
        self.assertIn("cannot write", outcomes[0].reason)


def _batch(tmp_path, count):
    return [(str(tmp_path / f"f{n}.hl7"), f"MSH|{n}".encode()) for n in range(count)]


def test_a_batch_is_flushed_by_one_syncfs_where_the_kernel_has_it(tmp_path, monkeypatch):
    """If syncfs is available, then a batch of five files costs one syncfs of their
    directory and one flush of the directory entry, no fsync per file, and every file is
    written with its payload."""
    flushed, synced = [], []
    monkeypatch.setattr(file_writes, "_SYNCFS", lambda fd: synced.append(fd) or 0)
    monkeypatch.setattr(file_writes.os, "fsync", lambda fd: flushed.append(fd))
    results = file_writes.write_batch(_batch(tmp_path, 5), fsync=True)
    assert [os.path.basename(r) for r in results] == [f"f{n}.hl7" for n in range(5)]
    assert len(synced) == 1
    assert len(flushed) == 1  # the directory, after the renames
    assert sorted(os.listdir(tmp_path)) == [f"f{n}.hl7" for n in range(5)]
    assert (tmp_path / "f3.hl7").read_bytes() == b"MSH|3"


def test_without_syncfs_each_file_of_a_batch_is_flushed(tmp_path, monkeypatch):
    """If syncfs is not available, then each file is flushed, then the directory once."""
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(file_writes, "_SYNCFS", None)
    monkeypatch.setattr(file_writes.os, "fsync",
                        lambda fd: (flushed.append(fd), real_fsync(fd)))
    results = file_writes.write_batch(_batch(tmp_path, 3), fsync=True)
    assert len(results) == 3 and not any(isinstance(r, OSError) for r in results)
    assert len(flushed) == 4


def test_a_batch_whose_flush_fails_leaves_no_file(tmp_path, monkeypatch):
    """If flushing the batch's data fails (EIO), then the whole batch is one retryable
    failure and neither a final nor a temporary file is left behind."""
    def failing_syncfs(fd):
        file_writes.ctypes.set_errno(5)
        return -1
    monkeypatch.setattr(file_writes, "_SYNCFS", failing_syncfs)
    results = file_writes.write_batch(_batch(tmp_path, 3), fsync=True)
    assert len(results) == 1 and isinstance(results[0], OSError)
    assert results[0].errno == 5
    assert os.listdir(tmp_path) == []


def test_syncfs_is_used_only_where_it_reports_write_back_errors(monkeypatch):
    """If the kernel is older than 5.8 (syncfs did not report failed write-backs), then
    files are flushed one by one; on 5.8 or later syncfs is used."""
    monkeypatch.setattr(file_writes.sys, "platform", "linux")
    monkeypatch.setattr(file_writes.platform, "release", lambda: "5.4.0-150-generic")
    assert file_writes._load_syncfs() is None
    monkeypatch.setattr(file_writes.platform, "release", lambda: "6.1.0")
    assert file_writes._load_syncfs() is not None


@pytest.mark.parametrize("umask, mode", [(0o077, 0o640), (0o022, 0o600), (0o000, 0o644)])
def test_a_batch_gets_file_mode_exactly_whatever_the_umask(tmp_path, umask, mode):
    """If a batch is written under a umask that takes bits of file_mode away (or none),
    then every file still has file_mode exactly, and the whole payload."""
    previous = os.umask(umask)
    try:
        payloads = [(str(tmp_path / f"f{n}.hl7"), bytes([n % 256]) * (70_000 + n))
                    for n in range(3)]
        results = file_writes.write_batch(payloads, fsync=False, file_mode=mode)
    finally:
        os.umask(previous)
    assert [os.stat(r).st_mode & 0o777 for r in results] == [mode] * 3
    assert [os.path.getsize(r) for r in results] == [70_000, 70_001, 70_002]


def test_temporary_names_are_unique_and_within_the_length_they_claim(tmp_path):
    """If many temporary names are drawn for one path, then no two are alike and each
    adds exactly what the name limit keeps room for."""
    names = {file_writes.temporary_name(str(tmp_path / "a.hl7"), 255)[0]
             for _ in range(1000)}
    assert len(names) == 1000
    assert {len(os.path.basename(n)) for n in names} == {len("a.hl7") + 38}
