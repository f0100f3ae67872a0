"""
The file reading behind ``aiguillage send``: how files become messages, purely.

The sending itself (``send_all`` over a real MLLP server) is covered in tests/test_cli.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.sender import messages_from_files, split_messages
from engine.synthetic import adt_message, oru_message

ADT = (b"MSH|^~\\&|HIS|CHU|AIG|CHU|20240101||ADT^A01^ADT_A01|C1|P|2.5\r"
       b"EVN||20240101\rPID|1||42^^^CHU\r")
ORU = (b"MSH|^~\\&|LAB|CHU|AIG|CHU|20240101||ORU^R01^ORU_R01|C2|P|2.5\r"
       b"PID|1||43^^^CHU\rOBX|1|NM|GLU||5.2\r")


def with_endings(message: bytes, ending: bytes) -> bytes:
    return message.replace(b"\r", ending)


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_one_message_any_line_ending_comes_out_with_cr(ending: bytes) -> None:
    assert split_messages(with_endings(ADT, ending)) == [ADT]


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_several_messages_per_file_are_split_at_each_msh(ending: bytes) -> None:
    data = with_endings(ADT + ORU + ADT, ending)
    assert split_messages(data) == [ADT, ORU, ADT]


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_last_segment_without_line_end_gets_cr(ending: bytes) -> None:
    data = with_endings(ADT + ORU, ending)
    data = data[:-len(ending)]
    assert split_messages(data) == [ADT, ORU]


def test_blank_lines_between_messages_are_dropped() -> None:
    data = ADT + b"\r\r\n\n" + ORU
    assert split_messages(data) == [ADT, ORU]
    assert split_messages(with_endings(ADT, b"\n") + b"\n\n\n" + with_endings(ORU, b"\n")) \
        == [ADT, ORU]


@pytest.mark.parametrize("trailer", [b"\n", b"\r\n\r\n", b"  \n", b"\r\n \t \r\n", b"   "])
def test_trailing_whitespace_after_the_last_message_is_not_sent(trailer: bytes) -> None:
    assert split_messages(ADT + ORU + trailer) == [ADT, ORU]


def test_leading_blank_lines_before_the_first_msh_are_dropped() -> None:
    assert split_messages(b"\r\n\r\n" + with_endings(ADT + ORU, b"\r\n")) == [ADT, ORU]


def test_mixed_line_endings_still_split_messages() -> None:
    """An editor that touched part of a file: CRLF here, LF there, CR elsewhere."""
    data = ADT.replace(b"\r", b"\r\n") + with_endings(ORU, b"\n") + ADT
    assert split_messages(data) == [ADT, ORU, ADT]


def test_segment_content_is_kept_byte_for_byte() -> None:
    """Trailing spaces inside the last field, non-ASCII bytes: not touched."""
    latin = ("MSH|^~\\&|HIS|CHU|||20240101||ADT^A08|C9|P|2.5|||||||8859/1\r"
             "PID|1||7||LEFÈVRE^Hélène  \r")
    data = latin.encode("latin-1")
    assert split_messages(data) == [data]


def test_generated_messages_round_trip() -> None:
    data = adt_message(1) + oru_message(2) + adt_message(3)
    assert split_messages(data) == [adt_message(1), oru_message(2), adt_message(3)]


@pytest.mark.parametrize("data", [
    b"\x00\x01\x02\n\x03\r\n\x04\xff",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"PID|1||42\rEVN||2024\n",  # HL7-looking but no MSH first
    b"hello\n\nworld\n",
])
def test_input_not_starting_with_msh_is_sent_once_exactly_as_is(data: bytes) -> None:
    assert split_messages(data) == [data]


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n\r\n", b"   \t\n"])
def test_empty_or_blank_file_gives_nothing(data: bytes) -> None:
    assert split_messages(data) == []


def test_msh_inside_a_field_does_not_split() -> None:
    """Only a segment starting with MSH starts a message."""
    message = b"MSH|^~\\&|A|B|||2024||ADT^A08|C1|P|2.5\rNTE|1||see MSH|x\r"
    assert split_messages(message + message) == [message, message]


def test_messages_from_files_labels_each_message_with_file_and_index(tmp_path: Path) -> None:
    first = tmp_path / "two.hl7"
    first.write_bytes(with_endings(ADT + ORU, b"\n"))
    second = tmp_path / "one.hl7"
    second.write_bytes(ORU)
    empty = tmp_path / "empty.hl7"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\xff\n")

    got = list(messages_from_files([str(first), str(empty), str(second), str(binary)]))

    assert got == [(f"{first}#1", ADT), (f"{first}#2", ORU), (f"{second}#1", ORU),
                   (f"{binary}#1", b"\x00\xff\n")]


def test_messages_from_files_is_lazy_and_ordered(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"m{i}.hl7"
        path.write_bytes(adt_message(i))
        paths.append(str(path))
    stream = messages_from_files(paths)
    assert next(stream) == (f"{paths[0]}#1", adt_message(0))
    assert [label for label, _ in stream] == [f"{paths[1]}#1", f"{paths[2]}#1"]


def test_messages_from_files_with_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(messages_from_files([str(tmp_path / "absent.hl7")]))
