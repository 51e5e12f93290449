"""BER-TLV as ICAO 9303 Part 10 and ISO/IEC 7816-4 use it: tags of 1-3 bytes, definite lengths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class TlvError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes


def read_header(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """Tag, value length and the offset where the value starts."""
    i = offset
    if i >= len(data):
        raise TlvError("no tag")
    tag = data[i]
    i += 1
    if tag & 0x1F == 0x1F:
        while True:
            if i >= len(data):
                raise TlvError("tag runs past the end")
            tag = (tag << 8) | data[i]
            i += 1
            if not data[i - 1] & 0x80:
                break
            if tag > 0xFFFFFF:
                raise TlvError("tag longer than 3 bytes")
    if i >= len(data):
        raise TlvError("no length")
    first = data[i]
    i += 1
    if first < 0x80:
        return tag, first, i
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError(f"unsupported length form {first:02X}")
    if i + count > len(data):
        raise TlvError("length runs past the end")
    return tag, int.from_bytes(data[i : i + count], "big"), i + count


def total_length(header: bytes) -> int:
    """Length of a whole TLV object given at least its tag and length bytes."""
    _tag, size, start = read_header(header)
    return start + size


def iterate(data: bytes) -> Iterator[Tlv]:
    """The TLV objects one after the other at the top level of data."""
    offset = 0
    while offset < len(data):
        tag, size, start = read_header(data, offset)
        end = start + size
        if end > len(data):
            raise TlvError(f"value of tag {tag:X} runs past the end")
        yield Tlv(tag, data[start:end])
        offset = end


def parse_one(data: bytes, tag: int) -> bytes:
    """The value of data's single top-level object, which must carry tag."""
    objects = list(iterate(data))
    if len(objects) != 1 or objects[0].tag != tag:
        found = ", ".join(f"{o.tag:X}" for o in objects) or "nothing"
        raise TlvError(f"expected one {tag:X}, found {found}")
    return objects[0].value


def find(data: bytes, tag: int) -> bytes | None:
    """The value of the first top-level object carrying tag, or None."""
    for obj in iterate(data):
        if obj.tag == tag:
            return obj.value
    return None


def encode(tag: int, value: bytes) -> bytes:
    size = len(value)
    if size < 0x80:
        length = bytes([size])
    elif size <= 0xFF:
        length = bytes([0x81, size])
    elif size <= 0xFFFF:
        length = b"\x82" + size.to_bytes(2, "big")
    else:
        length = b"\x83" + size.to_bytes(3, "big")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big") + length + value
