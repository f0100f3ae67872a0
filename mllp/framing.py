"""
MLLP framing: the one home of the wire constants, an encoder and a pure
incremental decoder.

A frame is ``VT payload FS CR``. TCP delivers a stream, not messages, so a
read may hold a piece of a frame, several frames, or bytes that belong to no
frame at all; :class:`FrameDecoder` turns such chunks back into payloads
without any I/O so it can be tested by feeding the same bytes in every chunk
size. It never holds more than ``max_frame_size`` bytes of an unfinished
frame, so a peer that never sends FS cannot exhaust memory.

Choices where peers misbehave (all counted, none fatal):

* Bytes outside a frame (before a VT, after FS CR) are dropped and counted in
  :attr:`FrameDecoder.discarded_bytes`.
* A VT inside an unfinished frame restarts the frame, as HAPI does: HL7 text
  never contains VT, so it means the sender abandoned the previous frame. The
  abandoned prefix (its VT included) is counted as discarded, once it has been
  checked against the limit: the outcome never depends on how reads split the stream.
* FS ends the frame by itself. The CR that should follow is consumed when it
  comes, in the same read or the next one, and a missing CR is tolerated: the
  byte after FS is then treated as outside any frame. Emitting the payload at
  FS, without waiting for the CR, keeps a split ``FS | CR`` write from
  delaying the ACK.

test-case-name: tests.mllp.test_framing
"""
from __future__ import annotations

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\r"

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
PREFIX_SIZE = 64 * 1024  # how much of an oversized frame is kept for the record

_CR = CARRIAGE_RETURN[0]


class FrameTooLarge(Exception):
    """An unfinished frame grew past the decoder's limit.

    ``prefix`` holds the first bytes of the offending frame (at most
    :data:`PREFIX_SIZE`) so it can be recorded, and ``complete_frames`` the
    payloads that were completed earlier in the same chunk, which are valid
    and must still be handled before the connection is dropped.
    """

    def __init__(self, size_so_far: int, limit: int, *, prefix: bytes = b"",
                 complete_frames: tuple[bytes, ...] = ()):
        super().__init__(
            f"MLLP frame of at least {size_so_far} bytes exceeds the maximum "
            f"frame size of {limit} bytes")
        self.size_so_far = size_so_far
        self.limit = limit
        self.prefix = prefix
        self.complete_frames = complete_frames


def encode_frame(payload: bytes) -> bytes:
    """Wrap ``payload`` as one MLLP frame.

    Raises :class:`ValueError` if the payload holds a VT or FS byte: the peer
    would cut the message there, so it is refused here rather than sent broken.
    """
    # find, not ``in``: CPython 3.11's ``bytes in bytes`` first tries the left operand as an
    # integer and builds a formatted TypeError it then drops, on every call
    if payload.find(START_BLOCK) >= 0 or payload.find(END_BLOCK) >= 0:
        raise ValueError("an MLLP payload must not contain VT (0x0b) or FS (0x1c)")
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


class FrameDecoder:
    """Turn a stream of chunks into MLLP payloads, incrementally and purely.

    After :class:`FrameTooLarge` has been raised the decoder refuses further
    input (it raises the same error again): the stream is no longer in a known
    state and the connection should be closed.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE):
        if max_frame_size < 1:
            raise ValueError("max_frame_size must be at least 1")
        self.max_frame_size = max_frame_size
        self.discarded_bytes = 0
        self._frame: bytearray | None = None  # None: between frames
        self._expect_cr = False  # the last chunk ended right after an FS
        self._failure: FrameTooLarge | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (never above the limit)."""
        return 0 if self._frame is None else len(self._frame)

    def feed(self, data: bytes) -> list[bytes]:
        """Consume one chunk; return the payloads it completed, in order."""
        if self._failure is not None:
            failed = self._failure
            raise FrameTooLarge(failed.size_so_far, failed.limit, prefix=failed.prefix)
        size = len(data)
        if self._frame is None and not self._expect_cr and data[:1] == START_BLOCK:
            # A chunk that is exactly one frame (VT, payload, FS, CR): what a peer waiting
            # for each ACK sends, read at once. The general path below gives the same.
            end = size - 2
            if (data.find(END_BLOCK, 1) == end and data[-1] == _CR
                    and data.find(START_BLOCK, 1, end) < 0 and end - 1 <= self.max_frame_size):
                return [data[1:end]]
        payloads: list[bytes] = []
        pos = 0
        if self._expect_cr and size:
            self._expect_cr = False
            if data[0] == _CR:
                pos = 1
        while pos < size:
            if self._frame is None:
                pos = self._seek_start(data, pos, size)
            else:
                pos = self._read_body(data, pos, size, payloads)
        return payloads

    def _seek_start(self, data: bytes, pos: int, size: int) -> int:
        """Skip to just after the next VT, counting what is skipped."""
        start = data.find(START_BLOCK, pos)
        if start < 0:
            self.discarded_bytes += size - pos
            return size
        self.discarded_bytes += start - pos
        self._frame = bytearray()
        return start + 1

    def _read_body(self, data: bytes, pos: int, size: int, payloads: list[bytes]) -> int:
        """Add frame bytes from ``pos``; on FS, emit the payload."""
        end = data.find(END_BLOCK, pos)
        stop = size if end < 0 else end
        restart = data.find(START_BLOCK, pos, stop)
        while restart >= 0:
            # An abandoned frame: it must have fitted, as it must had the VT come in a later
            # read; then drop its VT, what was buffered and the bytes before the new VT.
            self._check_size(data, pos, restart, payloads)
            self.discarded_bytes += 1 + len(self._frame) + (restart - pos)
            self._frame = bytearray()
            pos = restart + 1
            restart = data.find(START_BLOCK, pos, stop)
        self._check_size(data, pos, stop, payloads)
        if end < 0:
            self._frame += memoryview(data)[pos:stop]
            return size
        if self._frame:
            self._frame += memoryview(data)[pos:end]
            payloads.append(bytes(self._frame))
        else:
            payloads.append(data[pos:end])
        self._frame = None
        return self._skip_cr(data, end + 1, size)

    def _skip_cr(self, data: bytes, pos: int, size: int) -> int:
        """Consume the CR after FS if it is here; remember to look for it otherwise."""
        if pos == size:
            self._expect_cr = True
            return pos
        return pos + 1 if data[pos] == _CR else pos

    def _check_size(self, data: bytes, pos: int, stop: int, payloads: list[bytes]) -> None:
        """Raise :class:`FrameTooLarge` if adding ``data[pos:stop]`` would pass the limit.

        ``stop`` is where the frame's bytes in this chunk end (its FS, or the chunk's end):
        the recorded prefix never takes the FS, nor what follows it.
        """
        total = len(self._frame) + stop - pos
        if total <= self.max_frame_size:
            return
        room = max(0, PREFIX_SIZE - len(self._frame))
        prefix = bytes(self._frame[:PREFIX_SIZE]) + data[pos:min(stop, pos + room)]
        self._failure = FrameTooLarge(total, self.max_frame_size, prefix=prefix,
                                      complete_frames=tuple(payloads))
        self._frame = None
        raise self._failure
