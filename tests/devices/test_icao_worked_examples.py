"""BAC and secure messaging against the worked example ICAO publishes, step by step.

Source of every expected value: ICAO Doc 9303 "Machine Readable Travel Documents", Part 11
"Security Mechanisms for MRTDs" (Eighth Edition, 2021), Appendix D "Worked example: Basic Access
Control (informative)": D.2 computing the keys from the MRZ, D.3 authentication and establishment
of session keys, D.4 secure messaging (SELECT EF.COM and two READ BINARY commands). The values were
checked against the transcriptions of that appendix in the test suites of zienit/icao-examples
(BACTest.java, SMTest.java) and ZeroPass/dmrtd (test/bac_test.dart, test/sm_test.dart).

These are the independent check the issue asks for: our own card emulator could share a
misreading of the standard with the client, the published numbers cannot.
"""

from __future__ import annotations

import hashlib

import pytest

from devices.cards import tlv
from devices.cards.bac import (
    KDF_ENC,
    KDF_MAC,
    BacKey,
    SecureChannel,
    adjust_parity,
    authenticate,
    decrypt,
    derive_key,
    encrypt,
    external_authenticate_data,
    key_seed,
    pad,
    retail_mac,
    session_from_response,
)
from devices.cards.base import CardError, Response
from devices.cards.emrtd import FID_EF_COM, read_file
from devices.cards.mrz import check_digit
from devices.readers.base import ReaderError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# ---- D.2: keys from the MRZ ------------------------------------------------------------------
DOCUMENT_NUMBER, BIRTH, EXPIRY = "L898902C<", "690806", "940623"
MRZ_INFORMATION = "L898902C<369080619406236"
SHA1_OF_MRZ_INFORMATION = h("239AB9CB282DAF66231DC5A4DF6BFBAEDF477565")
K_SEED = h("239AB9CB282DAF66231DC5A4DF6BFBAE")
SHA1_ENC = h("AB94FCEDF2664EDFB9B291F85D7F77F27F2F4A9D")  # SHA-1(K_seed || 00000001)
K_ENC = h("AB94FDECF2674FDFB9B391F85D7F76F2")  # after the parity adjustment
SHA1_MAC = h("7862D9ECE03C1BCD4D77089DCF131442814EA70A")  # SHA-1(K_seed || 00000002)
K_MAC = h("7962D9ECE03D1ACD4C76089DCE131543")

# ---- D.3: authentication and session keys ----------------------------------------------------
RND_IC = h("4608F91988702212")
RND_IFD = h("781723860C06C226")
K_IFD = h("0B795240CB7049B01C19B33E32804F0B")
S = h("781723860C06C226 4608F91988702212 0B795240CB7049B01C19B33E32804F0B")
E_IFD = h("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
M_IFD = h("5F1448EEA8AD90A7")
CMD_DATA = E_IFD + M_IFD
EXTERNAL_AUTHENTICATE = h("0082000028") + CMD_DATA + h("28")
RESP_DATA = h("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F 2F2D235D074D7449")
E_IC, M_IC = RESP_DATA[:32], RESP_DATA[32:]
R = h("4608F91988702212 781723860C06C226 0B4F80323EB3191CB04970CB4052790B")
K_IC = h("0B4F80323EB3191CB04970CB4052790B")
SESSION_SEED = h("0036D272F5C350ACAC50C3F572D23600")  # K_IFD xor K_IC
KS_ENC = h("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = h("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = h("887022120C06C226")

# ---- D.4: secure messaging -------------------------------------------------------------------
SELECT_EF_COM = h("00A4020C02011E")
SELECT_DO87 = h("8709016375432908C044F6")
SELECT_M = h("0CA4020C80000000 8709016375432908C044F6")
SELECT_N = h("887022120C06C227 0CA4020C80000000 8709016375432908C044F6 8000000000")
SELECT_CC = h("BF8B92D635FF24F8")
SELECT_PROTECTED = h("0CA4020C15 8709016375432908C044F6 8E08BF8B92D635FF24F8 00")
SELECT_RAPDU = h("990290008E08FA855A5D4C50A8ED9000")
SELECT_K = h("887022120C06C228 9902900080000000")
SELECT_RESPONSE_CC = h("FA855A5D4C50A8ED")

READ4 = h("00B0000004")
READ4_M = h("0CB0000080000000 970104")
READ4_N = h("887022120C06C229 0CB0000080000000 9701048000000000")
READ4_CC = h("ED6705417E96BA55")
READ4_PROTECTED = h("0CB000000D 970104 8E08ED6705417E96BA55 00")
READ4_RAPDU = h("8709019FF0EC34F9922651 99029000 8E08AD55CC17140B2DED 9000")
READ4_K = h("887022120C06C22A 8709019FF0EC34F9922651 9902900080")
READ4_RESPONSE_CC = h("AD55CC17140B2DED")
READ4_DATA = h("60145F01")

READ18 = h("00B0000412")
READ18_M = h("0CB0000480000000 970112")
READ18_N = h("887022120C06C22B 0CB0000480000000 9701128000000000")
READ18_CC = h("2EA28A70F3C7B535")
READ18_PROTECTED = h("0CB000040D 970112 8E082EA28A70F3C7B535 00")
READ18_DO87 = h("871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A")
READ18_RAPDU = READ18_DO87 + h("99029000 8E08C8B2787EAEA07D74 9000")
# The appendix prints K without its final padding byte 80; the MAC is over the padded block.
READ18_K = h("887022120C06C22C") + READ18_DO87 + h("9902900080")
READ18_RESPONSE_CC = h("C8B2787EAEA07D74")
READ18_DATA = h("04303130365F36063034303030305C026175")

EF_COM = READ4_DATA + READ18_DATA


class ScriptedChip:
    """Answers each expected command with the published response, and fails on anything else."""

    def __init__(self, exchange: list[tuple[bytes, bytes]]) -> None:
        self._exchange = list(exchange)
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        assert self._exchange, f"unexpected extra command {apdu.hex().upper()}"
        expected, answer = self._exchange.pop(0)
        assert apdu.hex().upper() == expected.hex().upper()
        return answer

    @property
    def finished(self) -> bool:
        return not self._exchange


def d4_channel() -> SecureChannel:
    return SecureChannel(KS_ENC, KS_MAC, int.from_bytes(SSC, "big"))


# ---- D.2 -------------------------------------------------------------------------------------


def test_check_digits_and_mrz_information() -> None:
    assert check_digit(DOCUMENT_NUMBER) == "3"
    assert check_digit(BIRTH) == "1"
    assert check_digit(EXPIRY) == "6"
    key = BacKey("L898902C", BIRTH, EXPIRY)  # the filler is added to nine characters
    assert key.mrz_information() == MRZ_INFORMATION


def test_key_seed() -> None:
    assert hashlib.sha1(MRZ_INFORMATION.encode()).digest() == SHA1_OF_MRZ_INFORMATION  # noqa: S324
    assert key_seed(BacKey(DOCUMENT_NUMBER, BIRTH, EXPIRY)) == K_SEED


def test_document_basic_access_keys() -> None:
    assert hashlib.sha1(K_SEED + b"\0\0\0\1").digest() == SHA1_ENC  # noqa: S324
    assert adjust_parity(SHA1_ENC[:8]) == K_ENC[:8]
    assert adjust_parity(SHA1_ENC[8:16]) == K_ENC[8:]
    assert derive_key(K_SEED, KDF_ENC) == K_ENC
    assert hashlib.sha1(K_SEED + b"\0\0\0\2").digest() == SHA1_MAC  # noqa: S324
    assert derive_key(K_SEED, KDF_MAC) == K_MAC


# ---- D.3 -------------------------------------------------------------------------------------


def test_terminal_cryptogram() -> None:
    assert encrypt(K_ENC, RND_IFD + RND_IC + K_IFD) == E_IFD
    assert retail_mac(K_MAC, pad(E_IFD)) == M_IFD
    assert external_authenticate_data(K_ENC, K_MAC, RND_IC, RND_IFD, K_IFD) == CMD_DATA
    assert S == RND_IFD + RND_IC + K_IFD


def test_chip_cryptogram_and_session_keys() -> None:
    # The chip's side, recomputed: it must come out as the published response.
    assert encrypt(K_ENC, R) == E_IC
    assert retail_mac(K_MAC, pad(E_IC)) == M_IC
    assert decrypt(K_ENC, E_IC) == R
    assert bytes(a ^ b for a, b in zip(K_IFD, K_IC, strict=True)) == SESSION_SEED
    keys = session_from_response(
        K_ENC, K_MAC, rnd_ic=RND_IC, rnd_ifd=RND_IFD, k_ifd=K_IFD, response=RESP_DATA
    )
    assert keys.ks_enc == KS_ENC
    assert keys.ks_mac == KS_MAC
    assert keys.ssc.to_bytes(8, "big") == SSC
    assert derive_key(SESSION_SEED, KDF_ENC) == KS_ENC
    assert derive_key(SESSION_SEED, KDF_MAC) == KS_MAC


def test_whole_bac_exchange_sends_the_published_apdus() -> None:
    chip = ScriptedChip(
        [
            (h("0084000008"), RND_IC + h("9000")),
            (EXTERNAL_AUTHENTICATE, RESP_DATA + h("9000")),
        ]
    )
    randoms = [RND_IFD, K_IFD]

    def random(size: int) -> bytes:
        value = randoms.pop(0)
        assert len(value) == size
        return value

    channel = authenticate(chip, BacKey(DOCUMENT_NUMBER, BIRTH, EXPIRY), random)
    assert chip.finished
    assert channel.ssc == SSC
    # The channel carries the published session keys: it produces D.4's first command.
    assert channel.protect(SELECT_EF_COM) == SELECT_PROTECTED


def test_tampered_chip_cryptogram_is_refused() -> None:
    tampered = RESP_DATA[:-1] + bytes([RESP_DATA[-1] ^ 1])
    with pytest.raises(CardError) as failure:
        session_from_response(
            K_ENC, K_MAC, rnd_ic=RND_IC, rnd_ifd=RND_IFD, k_ifd=K_IFD, response=tampered
        )
    assert failure.value.error is ReaderError.BAD_DATA


def test_wrong_mrz_data_is_access_denied() -> None:
    # A chip refuses an EXTERNAL AUTHENTICATE made from other MRZ data with 6300.
    chip = ScriptedChip([(h("0084000008"), RND_IC + h("9000"))])
    sent: list[bytes] = []

    class Refusing:
        def transmit(self, apdu: bytes) -> bytes:
            sent.append(apdu)
            return chip.transmit(apdu) if apdu[1] == 0x84 else h("6300")

    with pytest.raises(CardError) as failure:
        authenticate(Refusing(), BacKey("L898902C", BIRTH, "940624"), bytes)
    assert failure.value.error is ReaderError.ACCESS_DENIED
    assert sent[1][5:45] != CMD_DATA


# ---- D.4 -------------------------------------------------------------------------------------


def test_select_ef_com_building_blocks() -> None:
    do87 = tlv.encode(0x87, b"\x01" + encrypt(KS_ENC, pad(h("011E"))))
    assert do87 == SELECT_DO87
    assert pad(h("0CA4020C")) + do87 == SELECT_M
    assert pad(h("887022120C06C227") + SELECT_M) == SELECT_N
    assert retail_mac(KS_MAC, SELECT_N) == SELECT_CC
    assert retail_mac(KS_MAC, SELECT_K) == SELECT_RESPONSE_CC


def test_read_binary_building_blocks() -> None:
    assert pad(h("887022120C06C229") + READ4_M) == READ4_N
    assert retail_mac(KS_MAC, READ4_N) == READ4_CC
    assert retail_mac(KS_MAC, READ4_K) == READ4_RESPONSE_CC
    assert pad(h("887022120C06C22B") + READ18_M) == READ18_N
    assert retail_mac(KS_MAC, READ18_N) == READ18_CC
    assert pad(READ18_K[:-1]) == READ18_K
    assert retail_mac(KS_MAC, READ18_K) == READ18_RESPONSE_CC


def test_protected_commands_and_responses_in_sequence() -> None:
    channel = d4_channel()

    assert channel.protect(SELECT_EF_COM) == SELECT_PROTECTED
    assert channel.ssc == h("887022120C06C227")
    assert channel.unprotect(SELECT_RAPDU) == Response(b"", 0x9000)
    assert channel.ssc == h("887022120C06C228")

    assert channel.protect(READ4) == READ4_PROTECTED
    assert channel.ssc == h("887022120C06C229")
    assert channel.unprotect(READ4_RAPDU) == Response(READ4_DATA, 0x9000)
    assert channel.ssc == h("887022120C06C22A")

    assert channel.protect(READ18) == READ18_PROTECTED
    assert channel.ssc == h("887022120C06C22B")
    assert channel.unprotect(READ18_RAPDU) == Response(READ18_DATA, 0x9000)
    assert channel.ssc == h("887022120C06C22C")


def test_reading_ef_com_replays_the_appendix_exactly() -> None:
    # read_file does what the appendix does: SELECT, READ BINARY of 4 bytes to learn the
    # length, then the remaining 18 bytes.
    chip = ScriptedChip(
        [
            (SELECT_PROTECTED, SELECT_RAPDU),
            (READ4_PROTECTED, READ4_RAPDU),
            (READ18_PROTECTED, READ18_RAPDU),
        ]
    )
    assert read_file(d4_channel(), chip, FID_EF_COM) == EF_COM
    assert chip.finished
    objects = {o.tag: o.value for o in tlv.iterate(tlv.parse_one(EF_COM, 0x60))}
    assert objects == {0x5F01: b"0106", 0x5F36: b"040000", 0x5C: b"\x61\x75"}


@pytest.mark.parametrize(
    ("index", "flip"),
    [(len(SELECT_RAPDU) - 3, 0x01), (4, 0x80), (len(SELECT_RAPDU) - 10, 0x10)],
)
def test_tampered_response_is_refused(index: int, flip: int) -> None:
    channel = d4_channel()
    channel.protect(SELECT_EF_COM)
    tampered = bytearray(SELECT_RAPDU)
    tampered[index] ^= flip
    with pytest.raises(CardError) as failure:
        channel.unprotect(bytes(tampered))
    assert failure.value.error is ReaderError.BAD_DATA


def test_response_out_of_sequence_is_refused() -> None:
    # Replaying the first answer where the second is due must fail: the counter moved on.
    channel = d4_channel()
    channel.protect(SELECT_EF_COM)
    channel.unprotect(SELECT_RAPDU)
    channel.protect(READ4)
    with pytest.raises(CardError):
        channel.unprotect(SELECT_RAPDU)


def test_plain_error_status_passes_through_and_plain_success_does_not() -> None:
    channel = d4_channel()
    channel.protect(SELECT_EF_COM)
    assert channel.unprotect(h("6A82")) == Response(b"", 0x6A82)
    channel = d4_channel()
    channel.protect(SELECT_EF_COM)
    with pytest.raises(CardError):
        channel.unprotect(h("9000"))
