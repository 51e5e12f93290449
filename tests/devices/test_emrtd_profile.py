"""The eMRTD profile against the emulated chip, byte for byte but without a reader in between;
and the emulator's own cryptography against the ICAO worked example, so that both peers are
checked against the standard rather than only against each other."""

from __future__ import annotations

import datetime as dt

import pytest

from devices.cards.bac import BacKey
from devices.cards.base import CardError, ProfileRegistry
from devices.cards.emrtd import EMRTD_AID, EmrtdProfile
from devices.cards.mrz import MrtdIdentity
from devices.identity import Sex
from devices.readers.base import ReaderError
from tests.fixtures import emrtd_card as emu

TODAY = dt.date(2026, 1, 15)


class Direct:
    """A transport that hands APDUs straight to the emulated chip."""

    def __init__(self, chip: emu.Chip) -> None:
        self.chip = chip
        self.count = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        return self.chip.handle(apdu)


def key_for(doc: emu.Document) -> BacKey:
    return BacKey(doc.document_number, doc.birth, doc.expiry)


def read(chip: emu.Chip, key: BacKey | None) -> MrtdIdentity:
    registry = ProfileRegistry([EmrtdProfile(lambda _reader: key, today=lambda: TODAY)])
    transport = Direct(chip)
    profile = registry.choose(transport, chip.atr)
    identity = profile.read(transport, "reader-1")
    assert isinstance(identity, MrtdIdentity)
    return identity


def test_emulator_crypto_matches_the_icao_worked_example() -> None:
    # ICAO Doc 9303 Part 11 Appendix D.2 and D.3 (see test_icao_worked_examples.py).
    k_enc, k_mac = emu.basic_access_keys("L898902C<", "690806", "940623")
    assert k_enc.hex().upper() == "AB94FDECF2674FDFB9B391F85D7F76F2"
    assert k_mac.hex().upper() == "7962D9ECE03D1ACD4C76089DCE131543"
    s = bytes.fromhex("781723860C06C2264608F919887022120B795240CB7049B01C19B33E32804F0B")
    e_ifd = emu.tdes_encrypt(k_enc, s)
    assert e_ifd.hex().upper() == (
        "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2"
    )
    assert emu.retail_mac(k_mac, emu.iso_pad(e_ifd)).hex().upper() == "5F1448EEA8AD90A7"
    assert emu.tdes_decrypt(k_enc, e_ifd) == s
    # D.4: the chip's MAC over the answer to SELECT EF.COM.
    ks_mac = bytes.fromhex("F1CB1F1FB5ADF208806B89DC579DC1F8")
    k = bytes.fromhex("887022120C06C2289902900080000000")
    assert emu.retail_mac(ks_mac, k).hex().upper() == "FA855A5D4C50A8ED"


def test_emulator_check_digits_match_the_specimen() -> None:
    td3 = emu.Document(
        surname="ERIKSSON",
        given_names="ANNA<MARIA",
        document_number="L898902C3",
        birth="740812",
        sex="F",
        expiry="120415",
        optional="ZE184226B",
    )
    assert td3.mrz() == (
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10"
    )
    td1 = emu.Document(
        surname="ERIKSSON",
        given_names="ANNA<MARIA",
        document_number="D23145890",
        birth="740812",
        sex="F",
        expiry="120415",
        kind="TD1",
    )
    assert td1.mrz() == (
        "I<UTOD231458907<<<<<<<<<<<<<<<7408122F1204159UTO<<<<<<<<<<<6ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
    )


@pytest.mark.parametrize("kind", ["TD3", "TD1"])
def test_reads_dg1_and_dg2(kind: str) -> None:
    photo = emu.sample_jpeg()
    doc = emu.Document(kind=kind, photo=photo)
    identity = read(emu.EmrtdChip(doc), key_for(doc))
    assert identity.name == "HUANG XIAO MING"
    assert identity.sex is Sex.MALE
    assert identity.birth_date == dt.date(1990, 1, 15)
    assert identity.valid_until == dt.date(2035, 6, 30)
    assert identity.id_number == doc.document_number
    assert identity.mrz.format == kind
    assert identity.photo == photo
    assert identity.photo_format == "jpeg"
    assert identity.source == "reader-1"


def test_large_photo_is_read_in_chunks() -> None:
    photo = emu.sample_jpeg(480, 640) * 2  # JPEG-led bytes, read in 223-byte chunks
    photo = photo[:30000]
    doc = emu.Document(photo=photo)
    chip = emu.EmrtdChip(doc)
    identity = read(chip, key_for(doc))
    assert identity.photo == photo


def test_document_without_dg2() -> None:
    doc = emu.Document(photo=b"")
    identity = read(emu.EmrtdChip(doc), key_for(doc))
    assert identity.photo is None
    assert identity.photo_format == ""


def test_wrong_mrz_data_is_access_denied() -> None:
    doc = emu.Document()
    chip = emu.EmrtdChip(doc)
    with pytest.raises(CardError) as failure:
        read(chip, BacKey(doc.document_number, doc.birth, "350701"))
    assert failure.value.error is ReaderError.ACCESS_DENIED
    assert chip.failed_authentications == 1


def test_no_mrz_data_asks_for_it() -> None:
    chip = emu.EmrtdChip(emu.Document())
    with pytest.raises(CardError) as failure:
        read(chip, None)
    assert failure.value.error is ReaderError.ACCESS_KEY_NEEDED


def test_card_without_the_application_is_unsupported() -> None:
    registry = ProfileRegistry([EmrtdProfile(lambda _reader: None)])
    transport = Direct(emu.UnsupportedChip())
    with pytest.raises(CardError) as failure:
        registry.choose(transport, emu.OTHER_ATR)
    assert failure.value.error is ReaderError.UNSUPPORTED_CARD
    assert transport.count == 1


def test_registry_tries_profiles_in_order() -> None:
    class Other:
        name = "other"
        aid = bytes.fromhex("D2760000850101")

        def accepts_atr(self, atr: bytes) -> bool:
            return True

        def read(self, transport: object, reader: str) -> MrtdIdentity:
            raise AssertionError("not this one")

    class NoAtr(Other):
        name = "never"

        def accepts_atr(self, atr: bytes) -> bool:
            return False

    emrtd = EmrtdProfile(lambda _reader: None)
    registry = ProfileRegistry([NoAtr(), Other(), emrtd])
    transport = Direct(emu.EmrtdChip(emu.Document()))
    assert registry.choose(transport, emu.EMRTD_ATR) is emrtd
    assert transport.count == 2  # NoAtr was skipped on the ATR alone
    assert emrtd.aid == EMRTD_AID
