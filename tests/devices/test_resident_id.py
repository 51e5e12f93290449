"""The resident ID card's text block, the reader status table and the presence bookkeeping."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from devices.identity import Sex
from devices.readers.base import EventKind, ReaderError, ReaderEvent
from devices.readers.resident_id import (
    NATIONS,
    TEXT_FIELDS,
    TEXT_SIZE,
    CardDataError,
    Presence,
    bmp_from_bgr,
    decode_identity,
    decoded_photo,
    encode_text,
    status_error,
)
from tests.fixtures.gat467_sim import PERSON, PHOTO

# Byte offsets of the fields in the text block, from the layout.
OFFSET = {}
_at = 0
for _name, _size in TEXT_FIELDS:
    OFFSET[_name] = _at
    _at += _size


def put(block: bytes, field: str, value: str) -> bytes:
    """block with one field replaced by value, space padded."""
    size = dict(TEXT_FIELDS)[field]
    raw = value.encode("utf-16-le")
    raw += " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    assert len(raw) == size
    start = OFFSET[field]
    return block[:start] + raw + block[start + size :]


def error_of(block: bytes) -> CardDataError:
    with pytest.raises(CardDataError) as caught:
        decode_identity(block, PHOTO, "r")
    return caught.value


def test_layout_fills_the_block_exactly() -> None:
    assert sum(size for _, size in TEXT_FIELDS) == TEXT_SIZE == 256


def test_a_card_decodes_to_its_holder_with_the_photo_kept_raw() -> None:
    block = encode_text(PERSON)
    identity = decode_identity(block, PHOTO, "desk reader")
    assert identity == dataclasses.replace(
        PERSON, photo=PHOTO, photo_format="wlt", source="desk reader"
    )
    assert identity.valid_until is None  # 长期
    # Space padding is gone from every field.
    assert identity.name == "张秀英"
    assert identity.issuing_authority == "北京市公安局东城分局"


def test_the_text_block_is_ucs2_little_endian_and_space_padded() -> None:
    block = encode_text(PERSON)
    assert block[:6] == "张秀英".encode("utf-16-le")
    assert block[6:30] == b" \x00" * 12
    assert block[OFFSET["sex"] : OFFSET["sex"] + 2] == b"2\x00"
    assert block[OFFSET["nation"] : OFFSET["nation"] + 4] == "01".encode("utf-16-le")
    end = OFFSET["valid_until"]
    assert block[end : end + 4] == "长期".encode("utf-16-le")


def test_a_dated_validity_and_another_nation() -> None:
    person = dataclasses.replace(
        PERSON,
        name="阿依古丽",
        nation="维吾尔",
        valid_from=dt.date(2019, 1, 2),
        valid_until=dt.date(2039, 1, 2),
    )
    identity = decode_identity(encode_text(person), None, "r")
    assert identity.nation == "维吾尔"
    assert identity.valid_until == dt.date(2039, 1, 2)
    assert identity.photo is None and identity.photo_format == ""


def test_nation_table_is_gb3304() -> None:
    assert list(NATIONS) == [f"{n:02d}" for n in range(1, 57)] + ["97", "98"]
    assert len(set(NATIONS.values())) == len(NATIONS)
    assert (NATIONS["01"], NATIONS["29"], NATIONS["43"], NATIONS["56"]) == (
        "汉",
        "柯尔克孜",
        "乌孜别克",
        "基诺",
    )
    assert NATIONS["98"] == "外国血统中国籍人士"


@pytest.mark.parametrize("code", ["00", "57", "99", "1", "汉"])
def test_an_unknown_nation_code_is_bad_data(code: str) -> None:
    assert error_of(put(encode_text(PERSON), "nation", code)).error is ReaderError.BAD_DATA


def test_sex_codes() -> None:
    for code, sex in (
        ("0", Sex.UNKNOWN),
        ("1", Sex.MALE),
        ("2", Sex.FEMALE),
        ("9", Sex.UNSPECIFIED),
    ):
        assert decode_identity(put(encode_text(PERSON), "sex", code), None, "r").sex is sex
    assert error_of(put(encode_text(PERSON), "sex", "3")).error is ReaderError.BAD_DATA


def test_a_wrong_check_digit_is_bad_data_not_an_identity() -> None:
    block = put(encode_text(PERSON), "id_number", "110101195203080022")
    error = error_of(block)
    assert error.error is ReaderError.BAD_DATA
    assert "GB 11643" in error.detail
    assert "110101" not in error.detail  # never the number itself


def test_a_lower_case_x_check_character_is_accepted() -> None:
    person = dataclasses.replace(
        PERSON, id_number="11010519491231002X", birth_date=dt.date(1949, 12, 31)
    )
    block = put(encode_text(person), "id_number", "11010519491231002x")
    assert decode_identity(block, None, "r").id_number == "11010519491231002X"


def test_birth_date_must_agree_with_the_id_number() -> None:
    block = put(encode_text(PERSON), "birth_date", "19520309")
    assert error_of(block).error is ReaderError.BAD_DATA


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", "19520230"),
        ("valid_from", "2016052"),
        ("valid_until", "20160519"),  # before valid_from
        ("valid_until", "长久"),
        ("name", ""),
    ],
)
def test_impossible_fields_are_bad_data(field: str, value: str) -> None:
    assert error_of(put(encode_text(PERSON), field, value)).error is ReaderError.BAD_DATA


def test_broken_text_encoding_is_bad_data() -> None:
    block = bytearray(encode_text(PERSON))
    block[0:2] = b"\x00\xd8"  # a lone high surrogate
    assert error_of(bytes(block)).error is ReaderError.BAD_DATA


@pytest.mark.parametrize(("text", "photo"), [(255, 1024), (257, 1024), (256, 1023)])
def test_block_sizes_are_checked(text: int, photo: int) -> None:
    with pytest.raises(CardDataError) as caught:
        decode_identity(encode_text(PERSON).ljust(text, b" ")[:text], bytes(photo), "r")
    assert caught.value.error is ReaderError.BAD_DATA


@pytest.mark.parametrize("flag", ["I", "Y"])
def test_foreigners_cards_are_not_supported(flag: str) -> None:
    block = encode_text(PERSON, type_flag=flag)
    assert error_of(block).error is ReaderError.UNSUPPORTED_CARD


def test_residence_permits_share_the_layout_without_a_nation() -> None:
    person = dataclasses.replace(PERSON, nation="", id_number="810000195203080025")
    identity = decode_identity(encode_text(person, type_flag="J"), None, "r")
    assert identity.nation == ""
    assert identity.id_number == "810000195203080025"
    # A blank nation is only right on a residence permit.
    assert error_of(encode_text(person)).error is ReaderError.BAD_DATA


def test_encode_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="name"):
        encode_text(dataclasses.replace(PERSON, name="名" * 16))


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (0x41, ReaderError.CARD_MOVED),
        (0x81, ReaderError.CARD_MOVED),
        (0x60, ReaderError.SAM_FAULT),
        (0x66, ReaderError.SAM_FAULT),
        (0x40, ReaderError.UNSUPPORTED_CARD),
        (0x32, ReaderError.BAD_DATA),
        (0x91, ReaderError.BAD_DATA),
        (0x10, ReaderError.OTHER),
    ],
)
def test_status_codes_map_to_advice(code: int, error: ReaderError) -> None:
    assert status_error(code).error is error


def test_an_unknown_status_code_is_reported_by_value() -> None:
    status = status_error(0x5C)
    assert status.error is ReaderError.OTHER
    assert "0x5C" in status.detail


class Recorder:
    def __init__(self) -> None:
        self.events: list[ReaderEvent] = []

    def __call__(self, event: ReaderEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]


def test_one_identity_per_placement_however_long_the_card_stays() -> None:
    sink = Recorder()
    presence = Presence("r", sink, removal_misses=2)
    assert presence.card_found() is True
    presence.read_succeeded(PERSON)
    for _ in range(50):
        assert presence.card_found() is False
    presence.no_card()  # one miss is not yet a removal
    assert presence.card_found() is False
    presence.no_card()
    presence.no_card()
    assert sink.kinds() == [EventKind.CARD_PRESENT, EventKind.IDENTITY, EventKind.CARD_REMOVED]
    assert presence.card_found() is True  # placed again: read again


def test_failed_reads_are_retried_a_few_times_per_placement() -> None:
    sink = Recorder()
    presence = Presence("r", sink, max_attempts=2, removal_misses=1)
    assert presence.card_found()
    presence.read_failed(ReaderError.CARD_MOVED, "reading the card failed")
    assert presence.card_found()
    presence.read_failed(ReaderError.CARD_MOVED, "reading the card failed")
    assert not presence.card_found()
    presence.no_card()
    assert presence.card_found()
    assert [e.error for e in sink.events if e.kind is EventKind.ERROR] == [
        ReaderError.CARD_MOVED
    ] * 2


def test_a_failing_sink_does_not_stop_the_reader() -> None:
    def broken(event: ReaderEvent) -> None:
        raise RuntimeError("sink broke")

    presence = Presence("r", broken)
    assert presence.card_found()
    presence.read_succeeded(PERSON)  # logged, not raised


def test_no_decoder_means_no_decoded_photo() -> None:
    identity = decode_identity(encode_text(PERSON), PHOTO, "r")
    assert decoded_photo(identity, None) is None

    def broken(photo: bytes) -> bytes:
        raise OSError("vendor library fault")

    assert decoded_photo(identity, broken) is None
    assert decoded_photo(identity, lambda photo: b"image:" + photo[:2]) == b"image:" + PHOTO[:2]


def test_bmp_wrapping_pads_rows_and_runs_top_down() -> None:
    pixels = bytes(range(256)) * (102 * 126 * 3 // 256) + bytes(102 * 126 * 3 % 256)
    bmp = bmp_from_bgr(pixels)
    assert bmp[:2] == b"BM"
    assert int.from_bytes(bmp[2:6], "little") == len(bmp) == 54 + 308 * 126
    assert int.from_bytes(bmp[18:22], "little", signed=True) == 102
    assert int.from_bytes(bmp[22:26], "little", signed=True) == -126
    assert bmp[54 : 54 + 306] == pixels[:306]
    assert bmp[54 + 306 : 54 + 308] == b"\x00\x00"
    assert bmp[54 + 308 : 54 + 308 + 306] == pixels[306:612]
    with pytest.raises(ValueError):
        bmp_from_bgr(pixels[:-1])
