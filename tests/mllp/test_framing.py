"""Tests for mllp.framing: the encoder and the incremental decoder."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mllp.framing import (
    CARRIAGE_RETURN,
    END_BLOCK,
    PREFIX_SIZE,
    START_BLOCK,
    FrameDecoder,
    FrameTooLarge,
    encode_frame,
)

PAYLOADS = [b"MSH|^~\\&|A|B\rPID|1\r", b"x", b"MSH|second\r" * 7, b"MSH|third"]


def feed_in_chunks(decoder: FrameDecoder, stream: bytes, size: int) -> list[bytes]:
    out: list[bytes] = []
    for start in range(0, len(stream), size):
        out += decoder.feed(stream[start:start + size])
    return out


def test_constants():
    """If the wire constants change, then MLLP peers no longer understand us."""
    assert (START_BLOCK, END_BLOCK, CARRIAGE_RETURN) == (b"\x0b", b"\x1c", b"\r")


def test_encode_frame():
    """If a payload is framed, then it is wrapped in VT ... FS CR."""
    assert encode_frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"


@pytest.mark.parametrize("bad", [b"a\x0bb", b"a\x1cb"])
def test_encode_frame_refuses_delimiters(bad):
    """If a payload holds VT or FS, then framing it is refused."""
    with pytest.raises(ValueError):
        encode_frame(bad)


def test_every_chunk_size():
    """If several frames arrive cut at any chunk size, then the same payloads come out."""
    stream = b"".join(encode_frame(p) for p in PAYLOADS)
    for size in range(1, len(stream) + 1):
        decoder = FrameDecoder()
        assert feed_in_chunks(decoder, stream, size) == PAYLOADS, size
        assert decoder.discarded_bytes == 0
        assert decoder.buffered == 0


@pytest.mark.parametrize("chunk", [
    b"\x0bMSH|x\x1c\r", b"\x0b\x1c\r", b"\x0b12345\x1c\r", b"\x0b123456\x1c\r",
    b"\x0bMS\x0bH|x\x1c\r", b"\x0bMSH\x1c|x\x1c\r", b"\x0bMSH|x\x1c\n", b"\x0bMSH|x\x1c",
    b"\x0bMSH|x\x1c\r\x0b", b"\x0b\x1c\x1c\r", b"\x0b\x0b\x1c\r",
])
@pytest.mark.parametrize("before", [b"", b"\x0bpa", b"\x0bdone\x1c"])
def test_a_chunk_of_one_frame_reads_as_its_bytes_one_by_one(chunk, before):
    """If a chunk is one whole frame, or nearly (a VT or FS inside, no CR, a frame begun
    before it, one byte over the limit of 5), then it gives what its bytes give fed one at
    a time: the same payloads, the same discarded count and state, the same refusal."""
    outcomes = []
    for size in (len(chunk), 1):
        decoder = FrameDecoder(max_frame_size=5)
        decoder.feed(before)
        try:
            out = feed_in_chunks(decoder, chunk, size)
        except FrameTooLarge as error:
            out = ("too large", error.size_so_far, error.prefix)
        outcomes.append((out, decoder.discarded_bytes, decoder.buffered,
                         decoder.feed(b"\r\x0bnext\x1c\r") if not isinstance(out, tuple) else 0))
    assert outcomes[0] == outcomes[1]


def test_every_chunk_size_with_garbage():
    """If bytes lie outside frames, then they are dropped and counted at any chunk size."""
    garbage = [b"noise", b"\r\n", b"", b"\r\r"]
    stream = b"".join(g + encode_frame(p) for g, p in zip(garbage, PAYLOADS)) + b"tail"
    for size in range(1, len(stream) + 1):
        decoder = FrameDecoder()
        assert feed_in_chunks(decoder, stream, size) == PAYLOADS, size
        assert decoder.discarded_bytes == sum(map(len, garbage)) + 4


def test_several_frames_in_one_chunk():
    """If one read holds three frames, then three payloads come out in order."""
    stream = b"".join(encode_frame(p) for p in PAYLOADS[:3])
    assert FrameDecoder().feed(stream) == PAYLOADS[:3]


def test_partial_frame_is_kept():
    """If a frame is cut, then nothing comes out until its FS arrives."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|par") == []
    assert decoder.buffered == 7
    assert decoder.feed(b"tial\x1c") == [b"MSH|partial"]


def test_empty_frame():
    """If a frame has no payload, then an empty payload comes out."""
    assert FrameDecoder().feed(b"\x0b\x1c\r") == [b""]


def test_missing_cr_is_tolerated():
    """If FS is not followed by CR, then the frame still ends and the next one is read."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bone\x1c\x0btwo\x1c\r") == [b"one", b"two"]
    assert decoder.discarded_bytes == 0


def test_byte_after_fs_that_is_not_cr_is_discarded():
    """If FS is followed by something other than CR, then that byte is outside any frame."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bone\x1cX\x0btwo\x1c") == [b"one", b"two"]
    assert decoder.discarded_bytes == 1


def test_cr_in_next_chunk_is_consumed():
    """If the CR after FS comes in the next read, then it is not counted as garbage."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bone\x1c") == [b"one"]
    assert decoder.feed(b"\r") == []
    assert decoder.feed(b"\r") == []
    assert decoder.discarded_bytes == 1


def test_vt_mid_frame_restarts():
    """If a VT comes inside an unfinished frame, then the frame restarts; the prefix is counted."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0babandoned") == []
    assert decoder.feed(b"more\x0bkept\x1c\r") == [b"kept"]
    assert decoder.discarded_bytes == len(b"\x0babandonedmore")


def test_vt_mid_frame_in_same_chunk():
    """If two VTs precede an FS in one read, then only the bytes after the last VT are kept."""
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0ba\x0bb\x0bc\x1c\r") == [b"c"]
    assert decoder.discarded_bytes == 4


@pytest.mark.parametrize("cut", range(0, 14))
def test_abandoned_frame_over_the_limit_overflows_whatever_the_split(cut):
    """If a frame passes the limit before a VT abandons it, then FrameTooLarge is raised
    whether the VT comes in the same read or a later one (found by fuzzing)."""
    stream = b"\x0bover the limit\x0bok\x1c\r"
    decoder = FrameDecoder(max_frame_size=5)
    with pytest.raises(FrameTooLarge) as raised:
        decoder.feed(stream[:cut])
        decoder.feed(stream[cut:])
    assert raised.value.prefix == b"over the limit"[:raised.value.size_so_far]


def test_frame_at_the_limit_passes():
    """If a payload is exactly max_frame_size bytes, then it is accepted."""
    decoder = FrameDecoder(max_frame_size=10)
    assert decoder.feed(encode_frame(b"0123456789")) == [b"0123456789"]


def test_oversized_frame_raises():
    """If an unfinished frame passes the limit, then FrameTooLarge says by how much."""
    decoder = FrameDecoder(max_frame_size=10)
    decoder.feed(b"\x0b01234")
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"56789AB")
    assert (caught.value.size_so_far, caught.value.limit) == (12, 10)
    assert caught.value.prefix == b"0123456789AB"
    assert "12" in str(caught.value) and "10" in str(caught.value)
    assert decoder.buffered == 0


def test_oversized_prefix_stops_at_the_frame_end():
    """If an oversized frame arrives whole, then its prefix holds its payload only: not the
    FS CR that end it, nor the next frame."""
    decoder = FrameDecoder(max_frame_size=4)
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"\x0btoo long\x1c\r\x0bnext\x1c\r")
    assert caught.value.prefix == b"too long"
    assert caught.value.size_so_far == 8


def test_oversized_keeps_earlier_frames():
    """If a chunk completes a frame before an oversized one, then that frame is handed over."""
    decoder = FrameDecoder(max_frame_size=4)
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"\x0bok\x1c\r\x0btoo long")
    assert caught.value.complete_frames == (b"ok",)


def test_decoder_refuses_input_after_overflow():
    """If a frame was too large, then later input raises again and yields nothing."""
    decoder = FrameDecoder(max_frame_size=2)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x0babc")
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"\x0bok\x1c\r")
    assert caught.value.complete_frames == ()


def test_oversize_prefix_is_bounded():
    """If a huge frame is refused, then its recorded prefix is at most PREFIX_SIZE bytes."""
    decoder = FrameDecoder(max_frame_size=PREFIX_SIZE * 2)
    decoder.feed(b"\x0b" + b"a" * (PREFIX_SIZE * 2))
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"b")
    assert caught.value.prefix == b"a" * PREFIX_SIZE


def test_memory_is_bounded():
    """If a peer never sends FS, then the buffer never exceeds the limit."""
    decoder = FrameDecoder(max_frame_size=1000)
    decoder.feed(b"\x0b")
    for _ in range(99):
        decoder.feed(b"x" * 10)
        assert decoder.buffered <= 1000
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"x" * 11)


def test_invalid_limit():
    """If the limit is not positive, then the decoder refuses it."""
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=0)


# --- properties ---------------------------------------------------------------------

payload_bytes = st.binary(max_size=200).map(
    lambda b: b.replace(START_BLOCK, b"v").replace(END_BLOCK, b"f"))
garbage_bytes = st.binary(max_size=20).map(
    lambda b: b.replace(START_BLOCK, b"g"))


def chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    edges = [0] + points + [len(stream)]
    return [stream[a:b] for a, b in zip(edges, edges[1:])]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(garbage_bytes, payload_bytes), max_size=8),
       st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_property_round_trip_with_garbage(frames, cuts):
    """If random frames with garbage between them are cut anywhere, then the payloads
    come out unchanged and every garbage byte is counted."""
    stream = b"".join(garbage + encode_frame(payload) for garbage, payload in frames)
    decoder = FrameDecoder()
    out: list[bytes] = []
    for chunk in chunked(stream, cuts):
        out += decoder.feed(chunk)
    assert out == [payload for _, payload in frames]
    assert decoder.discarded_bytes == sum(len(garbage) for garbage, _ in frames)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=64), st.integers(min_value=0, max_value=200),
       st.lists(st.integers(min_value=0, max_value=500), max_size=20))
def test_property_oversize_detected(limit, length, cuts):
    """If a frame is longer than the limit, then FrameTooLarge is raised and the buffer
    never held more than the limit; otherwise the payload comes out."""
    payload = b"p" * length
    decoder = FrameDecoder(max_frame_size=limit)
    out: list[bytes] = []
    try:
        for chunk in chunked(encode_frame(payload), cuts):
            out += decoder.feed(chunk)
            assert decoder.buffered <= limit
    except FrameTooLarge as error:
        assert length > limit
        assert error.limit == limit and error.size_so_far > limit
    else:
        assert length <= limit and out == [payload]
