"""
Fuzzing the wire layer with hypothesis, each fuzzer with its invariant:

* framing: the same frames (and the same count of discarded bytes) whatever the split;
* header and ACK: an ACK for anything the header reader accepts, with MSA-2 = MSH-10;
  a refusal for anything at all, echoing the MSH-10 the lenient reader finds; the lenient
  reader agrees with the strict one whenever the strict one accepts;
* ACK reading: whatever a peer answers is a decision or :class:`HeaderError`, nothing else.

Example counts are kept modest so the suite stays fast; ``bench/fuzz_wire.py`` runs the same
properties (and those of the mappings) for longer.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mllp.ack import HL7Error, build_ack, build_nak_without_header, parse_ack
from mllp.codes import ACCEPTING_CODES
from mllp.framing import FrameDecoder, FrameTooLarge
from mllp.header import HeaderError, header_codec, read_header, read_header_leniently

# AIGUILLAGE_FUZZ_EXAMPLES raises the count for a long run (bench/fuzz_wire.py).
FUZZ = settings(max_examples=int(os.environ.get("AIGUILLAGE_FUZZ_EXAMPLES", "300")),
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Bytes that matter to the wire layer, and a few that do not.
wire_bytes = st.lists(st.sampled_from(
    [b"\x0b", b"\x1c", b"\r", b"\n", b"MSH", b"|", b"^~\\&", b"^", b"~", b"\\", b"&", b"#",
     b"A", b"1", b" ", b"\xe9", b"\xff", b"\x00", b"MSA", b"ERR", b"AA", b"X"]),
    max_size=60).map(b"".join)
field_text = st.text(alphabet=st.sampled_from("AZaz09 .-_^~\\&|#$!%*\xe9\u00fc\u4e2d"),
                     max_size=8)


def frames_of(stream: bytes, cuts: list[int], limit: int) -> tuple[list[bytes], int, bool]:
    """The frames, discarded count and overflow of ``stream`` fed in the pieces ``cuts`` make."""
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    edges = [0, *points, len(stream)]
    decoder = FrameDecoder(max_frame_size=limit)
    frames: list[bytes] = []
    try:
        for start, end in zip(edges, edges[1:]):
            frames += decoder.feed(stream[start:end])
    except FrameTooLarge as error:
        return frames + list(error.complete_frames), decoder.discarded_bytes, True
    return frames, decoder.discarded_bytes, False


@FUZZ
@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=400), max_size=12),
       st.integers(min_value=1, max_value=40))
def test_frames_are_the_same_whatever_the_split(stream, cuts, limit):
    """If any bytes are cut anywhere, then the frames, discarded bytes and overflow are those
    of the bytes fed at once."""
    assert frames_of(stream, cuts, limit) == frames_of(stream, [], limit)


@st.composite
def msh_payloads(draw) -> bytes:
    """MSH segments from plausible and implausible pieces, in several character sets; about
    half have usable delimiters and MSH-9, MSH-10 and MSH-12."""
    plausible = draw(st.booleans())
    separator = "|" if plausible else draw(st.sampled_from("|#!$A "))
    encoding = draw(st.sampled_from(["^~\\&", "^~\\&#", "$%*@"] if plausible else
                                    ["^~\\&", "^~\\", "^~\\R", "^^\\&", ""]))
    fields = draw(st.lists(field_text, min_size=11 if plausible else 0, max_size=20))
    if plausible:
        for index in (7, 8, 10):  # MSH-9, MSH-10, MSH-12
            fields[index] = fields[index] or "X"
    charset = draw(st.sampled_from(["", "", "8859/1", "UNICODE UTF-8", "ASCII", "BOGUS"]))
    if len(fields) >= 17:
        fields[15] = charset
    text = "MSH" + separator + encoding + separator + separator.join(fields)
    codec = header_codec(charset)
    body = draw(st.sampled_from(["", "\rPID|1", "\nEVN|A01\r"]))
    return (text + body).encode(codec, errors="replace")


def readable_control_id(control_id: str, charset: str) -> bool:
    """Whether MSH-10 survives being written in the ACK's character set."""
    codec = header_codec(charset)
    return control_id.encode(codec, errors="replace").decode(codec) == control_id


@FUZZ
@given(msh_payloads(), field_text)
@example(b"MSH|^~\\&|||||||ADT^A01|C1|P|2.8", "a|b")
def test_an_ack_for_anything_the_header_reader_accepts(payload, text):
    """If read_header accepts a payload, then an ACK is built for it, read back as AA with
    MSA-2 = MSH-10 and the text; and the lenient reader agrees with the strict one."""
    try:
        header = read_header(payload)
    except HeaderError:
        return
    assert read_header_leniently(payload) == header
    ack = build_ack(header, "AA", text=text, control_id="ACK1", timestamp="20240101")
    result = parse_ack(ack)
    assert result.code == "AA"
    if readable_control_id(header.control_id, header.charset):
        assert result.control_id_echoed == header.control_id
    if readable_control_id(text, header.charset):
        assert result.text == text.strip() or result.text == text


@FUZZ
@given(st.one_of(msh_payloads(), wire_bytes))
def test_a_refusal_for_anything(payload):
    """If any bytes come in, then a refusal is built, read back as AR or CR with MSA-2 the
    MSH-10 the lenient reader found."""
    partial = read_header_leniently(payload)
    nak = build_nak_without_header(HL7Error(100, "unreadable"), "ACK2", "20240101",
                                   payload=payload)
    result = parse_ack(nak)
    assert result.code in ("AR", "CR")
    if readable_control_id(partial.control_id, partial.charset):
        assert result.control_id_echoed == partial.control_id.strip()


escape_text = st.text(alphabet=st.sampled_from("\\XZPFSTRE0-1aZ^&~|"), max_size=16)


@st.composite
def peer_acks(draw) -> bytes:
    """ACKs as a hostile peer could write them: any code, and escapes in MSA-3 and ERR-8."""
    code = draw(st.sampled_from(["AA", "AE", "AR", "CA", "", " ", "ZZ"]))
    msa3, err8 = draw(escape_text), draw(escape_text)
    err3 = draw(st.sampled_from(["207", "", "2x", "-1", "9" * 30, "\u0663"]))
    lines = [draw(st.sampled_from(["MSH|^~\\&|||||||ACK|1|P|2.5", "MSH|^~\\&#", "MSH|^~\\"])),
             f"MSA|{code}|1|{msa3}", f"ERR|{draw(escape_text)}||{err3}|E||||{err8}"]
    return "\r".join(lines).encode("utf-8")


@FUZZ
@given(st.one_of(peer_acks(), wire_bytes))
@example(b"MSH|^~\\&|||||||ACK|1|P|2.5\rMSA|AA|1|\\XZZ\\")
@example(b"MSH|^~\\&|||||||ACK|1|P|2.5\rMSA|AA|1\rERR||||E||||\\X-1\\")
def test_reading_any_ack_ends_in_a_decision(payload):
    """If a peer answers anything, then parse_ack returns what it says or raises
    HeaderError, and an AA is read as accepted whatever its text holds."""
    try:
        result = parse_ack(payload)
    except HeaderError:
        return
    assert isinstance(result.text, str)
    if result.code == "AA":
        assert result.accepted and result.code in ACCEPTING_CODES
