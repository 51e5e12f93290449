"""Basic Access Control and 3DES secure messaging (ICAO 9303 Part 11 §4.3, §9.7, §9.8).

The ciphers come from `cryptography`'s decrepit module: BAC is defined on two-key 3DES and
single DES (retail MAC), which `cryptography` keeps there, supported, for legacy protocols such
as this one. Nothing else here is cryptography of our own beyond the standard's compositions:
key derivation, ISO/IEC 9797-1 padding method 2 and MAC algorithm 3, and the secure messaging
envelope.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from devices.cards import tlv
from devices.cards.base import CardError, CardTransport, Response, command
from devices.cards.mrz import MrzData, MrzError, check_digit
from devices.readers.base import ReaderError

_ZERO_IV = bytes(8)
KDF_ENC = 1
KDF_MAC = 2
# Status words a chip answers EXTERNAL AUTHENTICATE with when the access key is wrong.
_AUTH_REFUSED = frozenset({0x6300, 0x6982, 0x6985, 0x6A80, 0x6988})

Random = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class BacKey:
    """The MRZ data that unlocks a chip: document number, birth and expiry dates (YYMMDD).

    Typed by staff or taken from a configured MRZ source; letters are upper-cased and spaces
    dropped. Invalid input raises ValueError (the application validates what was typed).
    """

    document_number: str
    birth_date: str
    expiry_date: str

    def __post_init__(self) -> None:
        number = "".join(self.document_number.split()).upper()
        for value, what in ((self.birth_date, "birth date"), (self.expiry_date, "expiry date")):
            if len(value) != 6 or not value.isascii() or not value.isdigit():
                raise ValueError(f"{what} must be six digits (YYMMDD)")
        if not number or not all(c.isascii() and (c.isalnum() or c == "<") for c in number):
            raise ValueError("document number must be letters, digits or <")
        object.__setattr__(self, "document_number", number)

    def __repr__(self) -> str:
        return "BacKey(<hidden>)"

    @classmethod
    def from_mrz(cls, mrz: MrzData) -> BacKey:
        return cls(mrz.document_number, mrz.birth_date_raw, mrz.expiry_date_raw)

    def mrz_information(self) -> str:
        """Document number (at least 9 characters), birth and expiry, each with its check digit."""
        number = self.document_number.ljust(9, "<")
        try:
            return (
                number
                + check_digit(number)
                + self.birth_date
                + check_digit(self.birth_date)
                + self.expiry_date
                + check_digit(self.expiry_date)
            )
        except MrzError as exc:
            raise ValueError(str(exc)) from exc


# ---- primitives ------------------------------------------------------------------------------


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so the byte has odd parity (DES key convention)."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) % 2) for b in key)


def key_seed(key: BacKey) -> bytes:
    # SHA-1 is what ICAO 9303 specifies for the BAC key seed; it is not used for security here.
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest()[:16]  # noqa: S324


def derive_key(seed: bytes, counter: int) -> bytes:
    """ICAO 9303 Part 11 §9.7.1 KDF for 3DES: SHA-1(seed || counter), 16 bytes, parity set."""
    digest = hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()  # noqa: S324
    return adjust_parity(digest[:16])


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 80 then zeros up to a multiple of 8 bytes."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 8)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) > 7:
        raise ValueError("padding is not ISO/IEC 9797-1 method 2")
    return stripped[:-1]


def _tdes(key: bytes) -> TripleDES:
    # A two-key 3DES key (K1 K2) is the three-key form K1 K2 K1.
    return TripleDES(key[:16] + key[:8])


def encrypt(key: bytes, data: bytes) -> bytes:
    """3DES-CBC with a zero IV, data already padded."""
    enc = Cipher(_tdes(key), modes.CBC(_ZERO_IV)).encryptor()
    return enc.update(data) + enc.finalize()


def decrypt(key: bytes, data: bytes) -> bytes:
    if len(data) % 8:
        raise ValueError("ciphertext is not a whole number of blocks")
    dec = Cipher(_tdes(key), modes.CBC(_ZERO_IV)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES over already padded data (8-byte MAC)."""
    if not data or len(data) % 8:
        raise ValueError("MAC input must be padded to whole blocks")
    ka, kb = key[:8], key[8:16]
    cbc = Cipher(TripleDES(ka), modes.CBC(_ZERO_IV)).encryptor()
    last = (cbc.update(data) + cbc.finalize())[-8:]
    # The last two steps work on one block, where CBC with a zero IV is plain DES.
    dec = Cipher(TripleDES(kb), modes.CBC(_ZERO_IV)).decryptor()
    enc = Cipher(TripleDES(ka), modes.CBC(_ZERO_IV)).encryptor()
    return enc.update(dec.update(last) + dec.finalize()) + enc.finalize()


# ---- BAC -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionKeys:
    ks_enc: bytes
    ks_mac: bytes
    ssc: int


def external_authenticate_data(
    k_enc: bytes, k_mac: bytes, rnd_ic: bytes, rnd_ifd: bytes, k_ifd: bytes
) -> bytes:
    """E_IFD || M_IFD: the 40 bytes the terminal sends to prove it knows the access key."""
    e_ifd = encrypt(k_enc, rnd_ifd + rnd_ic + k_ifd)
    return e_ifd + retail_mac(k_mac, pad(e_ifd))


def session_from_response(
    k_enc: bytes, k_mac: bytes, *, rnd_ic: bytes, rnd_ifd: bytes, k_ifd: bytes, response: bytes
) -> SessionKeys:
    """Check the chip's E_IC || M_IC and derive the session keys and send sequence counter."""
    if len(response) != 40:
        raise CardError(ReaderError.BAD_DATA, f"authentication answer of {len(response)} bytes")
    e_ic, m_ic = response[:32], response[32:]
    if not hmac.compare_digest(retail_mac(k_mac, pad(e_ic)), m_ic):
        raise CardError(ReaderError.BAD_DATA, "chip authentication MAC does not verify")
    r = decrypt(k_enc, e_ic)
    if r[:8] != rnd_ic or r[8:16] != rnd_ifd:
        raise CardError(ReaderError.BAD_DATA, "chip did not echo the challenges")
    seed = bytes(a ^ b for a, b in zip(k_ifd, r[16:32], strict=True))
    return SessionKeys(
        ks_enc=derive_key(seed, KDF_ENC),
        ks_mac=derive_key(seed, KDF_MAC),
        ssc=int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big"),
    )


def authenticate(
    transport: CardTransport, key: BacKey, random: Random = os.urandom
) -> SecureChannel:
    """Run BAC on the selected eMRTD application; CardError(ACCESS_DENIED) if the key is wrong."""
    seed = key_seed(key)
    k_enc, k_mac = derive_key(seed, KDF_ENC), derive_key(seed, KDF_MAC)
    challenge = Response.parse(transport.transmit(command(0x00, 0x84, 0x00, 0x00, le=8)))
    if not challenge.ok or len(challenge.data) != 8:
        raise CardError(
            ReaderError.BAD_DATA,
            f"GET CHALLENGE answered {challenge.sw:04X} with {len(challenge.data)} bytes",
        )
    rnd_ic = challenge.data
    rnd_ifd, k_ifd = random(8), random(16)
    data = external_authenticate_data(k_enc, k_mac, rnd_ic, rnd_ifd, k_ifd)
    answer = Response.parse(transport.transmit(command(0x00, 0x82, 0x00, 0x00, data=data, le=40)))
    if answer.sw in _AUTH_REFUSED:
        raise CardError(ReaderError.ACCESS_DENIED, f"EXTERNAL AUTHENTICATE {answer.sw:04X}")
    if not answer.ok:
        raise CardError(ReaderError.BAD_DATA, f"EXTERNAL AUTHENTICATE {answer.sw:04X}")
    keys = session_from_response(
        k_enc, k_mac, rnd_ic=rnd_ic, rnd_ifd=rnd_ifd, k_ifd=k_ifd, response=answer.data
    )
    return SecureChannel(keys.ks_enc, keys.ks_mac, keys.ssc)


# ---- secure messaging ------------------------------------------------------------------------


class SecureChannel:
    """Wraps command APDUs and unwraps responses; the counter advances once per message."""

    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: int) -> None:
        self._enc = ks_enc
        self._mac = ks_mac
        self._ssc = ssc

    @property
    def ssc(self) -> bytes:
        return self._ssc.to_bytes(8, "big")

    def _next_ssc(self) -> bytes:
        self._ssc = (self._ssc + 1) % (1 << 64)
        return self.ssc

    def protect(self, apdu: bytes) -> bytes:
        """The protected form of a short, unprotected command APDU (ISO/IEC 7816-4 case 1-4)."""
        header, data, le = _split(apdu)
        header = bytes([header[0] | 0x0C]) + header[1:]
        do87 = tlv.encode(0x87, b"\x01" + encrypt(self._enc, pad(data))) if data else b""
        do97 = tlv.encode(0x97, bytes([le % 256])) if le is not None else b""
        mac = retail_mac(self._mac, pad(self._next_ssc() + pad(header) + do87 + do97))
        body = do87 + do97 + tlv.encode(0x8E, mac)
        return header + bytes([len(body)]) + body + b"\x00"

    def unprotect(self, raw: bytes) -> Response:
        """Check and decrypt a protected response; a bare status word is passed on unchecked
        (chips answer errors that way), and CardError(BAD_DATA) means the session is broken."""
        outer = Response.parse(raw)
        if not outer.data:
            if outer.ok:
                raise CardError(ReaderError.BAD_DATA, "success without secure messaging")
            return outer
        try:
            objects = list(tlv.iterate(outer.data))
        except tlv.TlvError as exc:
            raise CardError(ReaderError.BAD_DATA, f"response objects: {exc}") from exc
        if not objects or objects[-1].tag != 0x8E:
            raise CardError(ReaderError.BAD_DATA, "response has no checksum")
        covered = outer.data[: len(outer.data) - len(tlv.encode(0x8E, objects[-1].value))]
        expected = retail_mac(self._mac, pad(self._next_ssc() + covered))
        if not hmac.compare_digest(expected, objects[-1].value):
            raise CardError(ReaderError.BAD_DATA, "response checksum does not verify")
        fields = {o.tag: o.value for o in objects[:-1]}
        if set(fields) - {0x87, 0x99} or 0x99 not in fields or len(fields[0x99]) != 2:
            raise CardError(ReaderError.BAD_DATA, "unexpected secure messaging objects")
        data = b""
        if 0x87 in fields:
            body = fields[0x87]
            if not body or body[0] != 0x01:
                raise CardError(ReaderError.BAD_DATA, "unknown padding indicator")
            try:
                data = unpad(decrypt(self._enc, body[1:]))
            except ValueError as exc:
                raise CardError(ReaderError.BAD_DATA, f"encrypted data: {exc}") from exc
        return Response(data, int.from_bytes(fields[0x99], "big"))

    def transmit(self, transport: CardTransport, apdu: bytes) -> Response:
        return self.unprotect(transport.transmit(self.protect(apdu)))


def _split(apdu: bytes) -> tuple[bytes, bytes, int | None]:
    if len(apdu) < 4:
        raise ValueError("an APDU has at least four header bytes")
    header, body = apdu[:4], apdu[4:]
    if not body:
        return header, b"", None
    if len(body) == 1:
        return header, b"", body[0] or 256
    lc = body[0]
    if lc == 0 or len(body) not in (1 + lc, 2 + lc):
        raise ValueError("only short APDUs can be protected here")
    data = body[1 : 1 + lc]
    le = (body[-1] or 256) if len(body) == 2 + lc else None
    return header, data, le
