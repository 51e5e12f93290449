"""MRZ parsing and the eMRTD data groups: ICAO specimens, check digits, DG1/DG2 layouts, TLV."""

from __future__ import annotations

import datetime as dt

import pytest

from devices.cards import tlv
from devices.cards.bac import BacKey, key_seed
from devices.cards.emrtd import face_image, parse_dg1
from devices.cards.mrz import MrtdIdentity, MrzError, parse, to_identity
from devices.identity import Identity, Sex
from tests.fixtures.emrtd_card import Document, build_dg2, sample_jpeg

TODAY = dt.date(2026, 1, 15)

# ICAO Doc 9303 Part 4 (TD3 specimen) and Part 5 (TD1 specimen), "Utopia" documents.
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
# ICAO Doc 9303 Part 11 Appendix D.2: a TD2 whose 12-character document number overflows into
# the optional data; its BAC key seed is published there.
TD2_LONG = ("I<UTOSTEVENSON<<PETER<JOHN<<<<<<<<<<", "D23145890<UTO3407127M95071227349<<<8")
TD2_LONG_SEED = bytes.fromhex("B366AD857DDCA2B08C0E299811714730")


def test_td3_specimen() -> None:
    mrz = parse("\n".join(TD3), TODAY)
    assert mrz.format == "TD3"
    assert mrz.document_code == "P"
    assert mrz.issuing_state == "UTO"
    assert mrz.primary_identifier == "ERIKSSON"
    assert mrz.secondary_identifier == "ANNA MARIA"
    assert mrz.document_number == "L898902C3"
    assert mrz.nationality == "UTO"
    assert mrz.birth_date == dt.date(1974, 8, 12)
    assert mrz.sex == "F"
    assert mrz.expiry_date == dt.date(2012, 4, 15)
    assert mrz.optional_data == "ZE184226B"


def test_td1_specimen() -> None:
    mrz = parse("".join(TD1), TODAY)
    assert mrz.format == "TD1"
    assert mrz.document_code == "I"
    assert mrz.document_number == "D23145890"
    assert mrz.birth_date == dt.date(1974, 8, 12)
    assert mrz.expiry_date == dt.date(2012, 4, 15)
    assert mrz.name == "ERIKSSON ANNA MARIA"


def test_td2_long_document_number() -> None:
    mrz = parse("".join(TD2_LONG), TODAY)
    assert mrz.format == "TD2"
    assert mrz.document_number == "D23145890734"
    assert mrz.birth_date == dt.date(1934, 7, 12)
    assert mrz.expiry_date == dt.date(1995, 7, 12)
    assert key_seed(BacKey.from_mrz(mrz)) == TD2_LONG_SEED


@pytest.mark.parametrize(
    ("line", "position"),
    [(1, 9), (1, 19), (1, 27), (1, 42), (1, 43)],
)
def test_every_td3_check_digit_is_checked(line: int, position: int) -> None:
    lines = list(TD3)
    digit = lines[line][position]
    wrong = str((int(digit) + 1) % 10)
    lines[line] = lines[line][:position] + wrong + lines[line][position + 1 :]
    with pytest.raises(MrzError):
        parse("".join(lines), TODAY)


@pytest.mark.parametrize(
    "text",
    [
        "",
        TD3[0],  # one line only
        TD3[0] + TD3[1].replace("<", "*"),  # a character the MRZ does not allow
        Document(birth="741312").mrz(),  # month 13, with a correct check digit
        Document(expiry="350231").mrz(),  # 31 February
    ],
)
def test_malformed_mrz_is_refused(text: str) -> None:
    with pytest.raises(MrzError):
        parse(text, TODAY)


def test_two_digit_years() -> None:
    doc = Document(birth="250101", expiry="990101")
    mrz = parse(doc.mrz(), TODAY)
    assert mrz.birth_date == dt.date(2025, 1, 1)  # not in the future: this century
    assert mrz.expiry_date == dt.date(1999, 1, 1)  # 2099 is more than 50 years ahead
    later = parse(Document(birth="270101", expiry="350101").mrz(), TODAY)
    assert later.birth_date == dt.date(1927, 1, 1)
    assert later.expiry_date == dt.date(2035, 1, 1)


def test_identity_mapping() -> None:
    mrz = parse("".join(TD3), TODAY)
    identity = to_identity(mrz, photo=b"\xff\xd8\xff", photo_format="jpeg", source="R1")
    assert isinstance(identity, Identity)
    assert isinstance(identity, MrtdIdentity)
    assert identity.name == "ERIKSSON ANNA MARIA"
    assert identity.sex is Sex.FEMALE
    assert identity.nation == ""
    assert identity.id_number == "L898902C3"
    assert identity.issuing_authority == "UTO"
    assert identity.valid_from is None
    assert identity.valid_until == dt.date(2012, 4, 15)
    assert identity.mrz is mrz
    assert identity.source == "R1"
    # Personal data stays out of reprs that reach logs.
    for text in (repr(identity), repr(mrz), repr(BacKey.from_mrz(mrz))):
        assert "ERIKSSON" not in text
        assert "L898902C" not in text
    unspecified = parse(Document(sex="X").mrz(), TODAY)
    assert to_identity(unspecified).sex is Sex.UNSPECIFIED


def test_bac_key_normalises_typed_input() -> None:
    key = BacKey(" l898 902c ", "690806", "940623")
    assert key.document_number == "L898902C"
    with pytest.raises(ValueError, match="six digits"):
        BacKey("L898902C", "69086", "940623")
    with pytest.raises(ValueError, match="letters"):
        BacKey("L898-902C", "690806", "940623")


def test_dg1_of_each_format() -> None:
    for doc in (Document(), Document(kind="TD1", document_number="AB1234567")):
        text = parse_dg1(doc.dg1())
        assert text == doc.mrz()
        assert parse(text, TODAY).document_number == doc.document_number
    with pytest.raises(tlv.TlvError):
        parse_dg1(tlv.encode(0x61, tlv.encode(0x5F1E, b"x")))


@pytest.mark.parametrize(("image_type", "fmt"), [(0, "jpeg"), (1, "jpeg2000")])
def test_dg2_face_image(image_type: int, fmt: str) -> None:
    if fmt == "jpeg":
        image = sample_jpeg()
    else:
        image = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(range(256)) * 3
    face = face_image(build_dg2(image, image_type))
    assert face is not None
    assert face.data == image
    assert face.format == fmt


def test_dg2_without_a_recognisable_image() -> None:
    assert face_image(build_dg2(b"not an image at all")) is None
    assert face_image(b"\x75\x03\x01\x02\x03") is None
    assert face_image(b"\x75\x85") is None


def test_tlv_lengths() -> None:
    for size in (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234, 0x10000):
        encoded = tlv.encode(0x5F2E, bytes(size))
        assert tlv.total_length(encoded[:8]) == len(encoded)
        assert tlv.parse_one(encoded, 0x5F2E) == bytes(size)
    with pytest.raises(tlv.TlvError):
        tlv.parse_one(b"\x61\x05\x01", 0x61)
    with pytest.raises(tlv.TlvError):
        tlv.total_length(b"\x61\x85\x00\x00\x00\x00\x00")
