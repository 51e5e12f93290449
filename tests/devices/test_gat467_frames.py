"""GA/T 467 frames: the published examples byte for byte, and the parser on spoiled lines."""

from __future__ import annotations

import pytest

from devices.readers.gat467 import (
    FIND_CARD,
    BadLength,
    ChecksumMismatch,
    Frame,
    FrameParser,
    GarbageSkipped,
    ParserItem,
    Response,
    TruncatedFrame,
    build_command,
    build_response,
    split_base_message,
)
from devices.readers.resident_id import encode_text
from tests.fixtures.gat467_sim import GARBAGE, PERSON, PHOTO, base_message


def frames(items: list[ParserItem]) -> list[bytes]:
    return [item.payload for item in items if isinstance(item, Frame)]


def errors(items: list[ParserItem]) -> list[type]:
    return [type(item) for item in items if not isinstance(item, Frame)]


def test_commands_match_the_published_example() -> None:
    assert build_command(*FIND_CARD) == bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")
    assert build_command(0x11, 0xFF) == bytes.fromhex("AA AA AA 96 69 00 03 11 FF ED")


def test_replies_match_the_published_example() -> None:
    found = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
    assert build_response(0x9F, bytes(4)) == found
    parsed = FrameParser().feed(found)
    assert parsed == [Frame(bytes.fromhex("00 00 9F 00 00 00 00"))]
    assert isinstance(parsed[0], Frame)
    assert Response.from_frame(parsed[0]) == Response(0, 0, 0x9F, bytes(4))


def test_the_base_message_reply_is_1295_bytes() -> None:
    reply = base_message(encode_text(PERSON))
    assert len(reply) == 1295
    assert reply[5:7] == b"\x05\x08"
    assert reply[7:14] == bytes.fromhex("00 00 90 01 00 04 00")
    (frame,) = FrameParser().feed(reply)
    assert isinstance(frame, Frame)
    text, photo = split_base_message(Response.from_frame(frame).data)
    assert text == encode_text(PERSON)
    assert photo == PHOTO


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000])
def test_any_chunking_gives_the_same_frames(size: int) -> None:
    stream = base_message(encode_text(PERSON)) + build_response(0x80)
    parser = FrameParser()
    out: list[ParserItem] = []
    for i in range(0, len(stream), size):
        out += parser.feed(stream[i : i + size])
    out += parser.flush()
    assert errors(out) == []
    assert [len(p) for p in frames(out)] == [1287, 3]


def test_garbage_before_the_preamble_is_skipped_and_counted() -> None:
    out = FrameParser().feed(GARBAGE + build_response(0x80))
    assert frames(out) == [b"\x00\x00\x80"]
    skipped = [i for i in out if isinstance(i, GarbageSkipped)]
    assert sum(i.count for i in skipped) == len(GARBAGE)


def test_a_wrong_check_byte_is_reported_and_the_next_frame_still_found() -> None:
    bad = bytearray(build_response(0x9F, bytes(4)))
    bad[-1] ^= 0xFF
    out = FrameParser().feed(bytes(bad) + build_response(0x80))
    assert errors(out) == [ChecksumMismatch]
    assert frames(out) == [b"\x00\x00\x80"]


@pytest.mark.parametrize("length", [b"\x00\x00", b"\x00\x02", b"\xff\xff"])
def test_a_length_out_of_range_is_reported_and_the_next_frame_still_found(length: bytes) -> None:
    bad = build_response(0x90)[:5] + length + b"\x00\x00\x90\x94"
    out = FrameParser().feed(bad + build_response(0x80))
    assert errors(out)[0] is BadLength
    assert frames(out) == [b"\x00\x00\x80"]


def test_a_truncated_frame_waits_then_is_reported_on_flush() -> None:
    parser = FrameParser()
    assert parser.feed(base_message(encode_text(PERSON))[:600]) == []
    assert parser.in_frame
    assert errors(parser.flush()) == [TruncatedFrame]
    assert not parser.in_frame


def test_a_frame_hidden_behind_a_truncated_one_is_recovered_on_flush() -> None:
    parser = FrameParser()
    out = parser.feed(base_message(encode_text(PERSON))[:600] + build_response(0x80))
    assert frames(out) == []  # still inside the first frame's declared length
    out = parser.flush()
    assert errors(out)[0] is TruncatedFrame
    assert frames(out) == [b"\x00\x00\x80"]


def test_a_split_preamble_is_kept_across_feeds() -> None:
    reply = build_response(0x80)
    parser = FrameParser()
    out = parser.feed(b"\x01\x02" + reply[:3])
    assert errors(out) == [GarbageSkipped]
    assert isinstance(out[0], GarbageSkipped) and out[0].count == 2
    assert parser.in_frame
    assert frames(parser.feed(reply[3:])) == [b"\x00\x00\x80"]


def test_a_reply_without_status_is_a_bad_length() -> None:
    with pytest.raises(BadLength):
        Response.from_frame(Frame(b"\x00\x00"))


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00",
        b"\x01\x00\x04\x00" + bytes(256 + 1023),
        b"\x00\xff\x04\x00" + bytes(255 + 1024),
        b"\x01\x00\x04\x00" + bytes(256 + 1025),
    ],
)
def test_base_message_block_lengths_are_checked(data: bytes) -> None:
    with pytest.raises(BadLength):
        split_base_message(data)
