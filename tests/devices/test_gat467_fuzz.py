"""Fuzzing the GA/T 467 frame parser with hypothesis.

By default a few hundred cases per property run. HALL_FUZZ_EXAMPLES=100000 runs that many per
property (the long mode: several minutes, so the per-test timeout is lifted for it).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.readers.gat467 import (
    PREAMBLE,
    Frame,
    FrameError,
    FrameParser,
    ParserItem,
    Response,
    build_command,
    build_frame,
    build_response,
)

EXAMPLES = int(os.environ.get("HALL_FUZZ_EXAMPLES", "300"))
if EXAMPLES > 1000:
    pytestmark = pytest.mark.timeout(0)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def without_preamble(data: bytes) -> bytes:
    """data with every whole preamble broken (its last byte dropped): noise, not a frame start."""
    while PREAMBLE in data:
        data = data.replace(PREAMBLE, PREAMBLE[:-1])
    return data


# Noise made of the bytes that matter to a deframer as well as any others.
fragments = st.sampled_from(
    [PREAMBLE[:k] for k in range(1, 5)] + [b"\xaa", b"\x96", b"\x69", b"\x00", b"\x05\x08"]
)
garbage = st.one_of(
    st.binary(max_size=64),
    st.lists(st.one_of(fragments, st.binary(max_size=4)), max_size=24).map(b"".join),
).map(without_preamble)
payloads = st.one_of(st.binary(min_size=2, max_size=64), st.binary(min_size=2, max_size=1400))
chunk_sizes = st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=16)


@st.composite
def spoiled_frames(draw: st.DrawFn) -> bytes:
    """A frame as a bad line delivers it: intact, a byte changed, cut short, or a wild length."""
    frame = build_frame(draw(payloads))
    how = draw(st.sampled_from(["intact", "flip", "cut", "length", "preamble"]))
    if how == "flip":
        at = draw(st.integers(min_value=0, max_value=len(frame) - 1))
        return frame[:at] + bytes((frame[at] ^ draw(st.integers(1, 255)),)) + frame[at + 1 :]
    if how == "cut":
        return frame[: draw(st.integers(min_value=0, max_value=len(frame) - 1))]
    if how == "length":
        return frame[:5] + draw(st.binary(min_size=2, max_size=2)) + frame[7:]
    if how == "preamble":
        return PREAMBLE + draw(st.binary(max_size=8))
    return frame


def feed_in_chunks(parser: FrameParser, data: bytes, sizes: list[int]) -> list[ParserItem]:
    out: list[ParserItem] = []
    at = 0
    step = 0
    while at < len(data):
        size = sizes[step % len(sizes)]
        out += parser.feed(data[at : at + size])
        at += size
        step += 1
    return out + parser.flush()


def payloads_of(items: list[ParserItem]) -> list[bytes]:
    return [item.payload for item in items if isinstance(item, Frame)]


@FUZZ
@given(pieces=st.lists(st.one_of(spoiled_frames(), garbage), max_size=8), sizes=chunk_sizes)
def test_parser_only_ever_reports_its_own_results(pieces: list[bytes], sizes: list[int]) -> None:
    stream = b"".join(pieces)
    chunked = feed_in_chunks(FrameParser(), stream, sizes)
    # Nothing raised; every result is a frame or one of the parser's own error types.
    assert all(isinstance(item, Frame | FrameError) for item in chunked)
    # How the bytes happened to arrive changes nothing about which frames come out.
    whole = FrameParser()
    assert payloads_of(chunked) == payloads_of(whole.feed(stream) + whole.flush())
    for payload in payloads_of(chunked):
        assert len(payload) >= 2


@FUZZ
@given(
    parts=st.lists(st.tuples(garbage, payloads), min_size=1, max_size=4),
    tail=garbage,
    sizes=chunk_sizes,
)
def test_no_valid_frame_after_garbage_is_lost(
    parts: list[tuple[bytes, bytes]], tail: bytes, sizes: list[int]
) -> None:
    stream = b"".join(noise + build_frame(payload) for noise, payload in parts) + tail
    out = feed_in_chunks(FrameParser(), stream, sizes)
    assert payloads_of(out) == [payload for _, payload in parts]


@FUZZ
@given(
    payload=payloads,
    cmd=st.integers(0, 255),
    para=st.integers(0, 255),
    sw3=st.integers(0, 255),
    sizes=chunk_sizes,
)
def test_every_built_frame_round_trips(
    payload: bytes, cmd: int, para: int, sw3: int, sizes: list[int]
) -> None:
    data = payload[2:]
    stream = build_frame(payload) + build_command(cmd, para, data) + build_response(sw3, data)
    out = feed_in_chunks(FrameParser(), stream, sizes)
    assert all(isinstance(item, Frame) for item in out)
    assert payloads_of(out) == [
        payload,
        bytes((cmd, para)) + data,
        b"\x00\x00" + bytes((sw3,)) + data,
    ]
    reply = out[2]
    assert isinstance(reply, Frame)
    assert Response.from_frame(reply) == Response(0, 0, sw3, data)
