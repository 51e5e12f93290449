"""The ICAO 9303 eMRTD profile: chip passports and ICAO-format residence cards.

After the registry has selected the LDS1 application, the profile runs BAC with the MRZ data the
application supplies, then reads DG1 (the MRZ, which becomes the Identity) and DG2 (the face
image, kept as the JPEG or JPEG 2000 bytes the chip stores) under secure messaging.

The access key comes from a callable given to the constructor, called on the reader's thread
with the reader's name. It must answer at once: the key staff typed for this reader in counter
mode, one from a configured MRZ source, or None. With None the read ends with ACCESS_KEY_NEEDED;
once staff have typed the data, the application asks the reader to read the card again.

With a trust store of CSCA certificates the profile then reads EF.SOD and runs Passive
Authentication over the data groups it read (devices/cards/passive_auth.py). The outcome rides on
the identity as MrtdIdentity.document_check; a document that fails the check is still returned.
Without a trust store EF.SOD is not read and the check says not_checked/no_trust_store.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from devices.cards import tlv
from devices.cards.bac import BacKey, Random, SecureChannel, authenticate
from devices.cards.base import CardError, CardTransport, command
from devices.cards.document_check import NOT_CHECKED, CheckStatus, DocumentCheck
from devices.cards.mrz import MrtdIdentity, MrzError, parse, to_identity
from devices.cards.passive_auth import TrustStore
from devices.cards.passive_auth import verify as passive_authentication
from devices.readers.base import ReaderError

log = logging.getLogger(__name__)

EMRTD_AID = bytes.fromhex("A0000002471001")
FID_EF_COM = 0x011E
FID_DG1 = 0x0101
FID_DG2 = 0x0102
FID_SOD = 0x011D

AccessKeySource = Callable[[str], BacKey | None]

# Plain data per READ BINARY: 0xDF bytes encrypt to 224, and with DO99 and DO8E the protected
# answer still fits a short response on every reader.
DEFAULT_CHUNK = 0xDF
_MAX_OFFSET = 0x7FFF  # READ BINARY with the offset in P1-P2 (even INS) reaches this far
_SW_FILE_NOT_FOUND = 0x6A82

_JPEG = b"\xff\xd8\xff"
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K = b"\xff\x4f\xff\x51"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class FaceImage:
    data: bytes
    format: str  # "jpeg" or "jpeg2000"


class EmrtdProfile:
    """Reads DG1 and DG2 of an eMRTD after BAC. See the module docstring for the access key."""

    def __init__(
        self,
        access_key: AccessKeySource,
        *,
        read_photo: bool = True,
        chunk: int = DEFAULT_CHUNK,
        today: Callable[[], dt.date] = dt.date.today,
        random: Random = os.urandom,
        trust_store: TrustStore | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if not 1 <= chunk <= 0xDF:
            raise ValueError("chunk must be 1..223 bytes")
        self._access_key = access_key
        self._read_photo = read_photo
        self._chunk = chunk
        self._today = today
        self._random = random
        self._trust = trust_store
        self._clock = clock

    @property
    def name(self) -> str:
        return "icao-9303-emrtd"

    @property
    def aid(self) -> bytes:
        return EMRTD_AID

    def accepts_atr(self, atr: bytes) -> bool:
        # Chips are contactless; the reader makes up the ATR, so only the application tells.
        return True

    def read(self, transport: CardTransport, reader: str) -> MrtdIdentity:
        key = self._access_key(reader)
        if key is None:
            raise CardError(ReaderError.ACCESS_KEY_NEEDED, "no MRZ data for this document")
        channel = authenticate(transport, key, self._random)
        dg1 = read_file(channel, transport, FID_DG1, self._chunk)
        try:
            mrz = parse(parse_dg1(dg1), self._today())
        except (MrzError, tlv.TlvError) as exc:
            raise CardError(ReaderError.BAD_DATA, f"DG1: {exc}") from exc
        face: FaceImage | None = None
        groups = {1: dg1}
        if self._read_photo:
            dg2 = read_file(channel, transport, FID_DG2, self._chunk, missing_ok=True)
            face = face_image(dg2) if dg2 else None
            if dg2:
                groups[2] = dg2
        check = self._check(channel, transport, groups, mrz.expiry_date)
        return to_identity(
            mrz,
            photo=face.data if face else None,
            photo_format=face.format if face else "",
            source=reader,
            document_check=check,
        )

    def _check(
        self,
        channel: SecureChannel,
        transport: CardTransport,
        groups: dict[int, bytes],
        expiry: dt.date,
    ) -> DocumentCheck:
        """Passive Authentication of the data groups read; a card taken away still raises."""
        if self._trust is None:
            return NOT_CHECKED
        try:
            sod = read_file(channel, transport, FID_SOD, self._chunk, missing_ok=True)
        except CardError as exc:
            if exc.error is not ReaderError.BAD_DATA:
                raise
            return DocumentCheck(CheckStatus.FAILED, "sod_unreadable", detail=exc.detail)
        try:
            check = passive_authentication(
                sod, groups, self._trust, now=self._clock(), document_expiry=expiry
            )
        except Exception as exc:  # a check that breaks must not lose the read
            log.exception("passive authentication broke")
            return DocumentCheck(CheckStatus.FAILED, "check_error", detail=type(exc).__name__)
        if not check.passed:
            log.warning("document check %s: %s (%s)", check.reason, check.detail, check.signer)
        return check


def read_file(
    channel: SecureChannel,
    transport: CardTransport,
    fid: int,
    chunk: int = DEFAULT_CHUNK,
    *,
    missing_ok: bool = False,
) -> bytes:
    """SELECT an elementary file and READ BINARY all of it (its length from its TLV header)."""
    select = command(0x00, 0xA4, 0x02, 0x0C, data=fid.to_bytes(2, "big"))
    selected = channel.transmit(transport, select)
    if selected.sw == _SW_FILE_NOT_FOUND and missing_ok:
        return b""
    if not selected.ok:
        raise CardError(ReaderError.BAD_DATA, f"SELECT {fid:04X} answered {selected.sw:04X}")
    head = _read(channel, transport, 0, 4)
    try:
        total = tlv.total_length(head)
    except tlv.TlvError as exc:
        raise CardError(ReaderError.BAD_DATA, f"file {fid:04X} header: {exc}") from exc
    if total > _MAX_OFFSET + chunk:
        raise CardError(ReaderError.BAD_DATA, f"file {fid:04X} of {total} bytes is too large")
    content = bytearray(head[:total])
    while len(content) < total:
        part = _read(channel, transport, len(content), min(chunk, total - len(content)))
        if not part:
            raise CardError(ReaderError.BAD_DATA, f"file {fid:04X} ended early")
        content += part
    return bytes(content[:total])


def _read(channel: SecureChannel, transport: CardTransport, offset: int, size: int) -> bytes:
    answer = channel.transmit(transport, command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=size))
    if not answer.ok:
        raise CardError(ReaderError.BAD_DATA, f"READ BINARY at {offset} answered {answer.sw:04X}")
    return answer.data


def parse_dg1(dg1: bytes) -> str:
    """The MRZ text DG1 holds (tag 61, data object 5F1F)."""
    mrz = tlv.find(tlv.parse_one(dg1, 0x61), 0x5F1F)
    if mrz is None:
        raise tlv.TlvError("DG1 has no MRZ data object")
    try:
        return mrz.decode("ascii")
    except UnicodeDecodeError as exc:
        raise tlv.TlvError("MRZ is not ASCII") from exc


def face_image(dg2: bytes) -> FaceImage | None:
    """The first face image of DG2, or None if there is none we can recognise.

    DG2 (tag 75) holds a biometric information group template (7F61) of templates (7F60)
    whose biometric data block (5F2E, or 7F2E) is an ISO/IEC 19794-5 face record.
    """
    try:
        group = tlv.parse_one(dg2, 0x75)
        templates = tlv.find(group, 0x7F61)
        if templates is None:
            return None
        for obj in tlv.iterate(templates):
            if obj.tag != 0x7F60:
                continue
            block = tlv.find(obj.value, 0x5F2E) or tlv.find(obj.value, 0x7F2E)
            if block:
                return _face_from_record(block)
    except tlv.TlvError:
        return None
    return None


def _face_from_record(block: bytes) -> FaceImage | None:
    image: bytes | None = None
    if block[:4] == b"FAC\x00" and len(block) >= 14 + 20:
        # General header 14 bytes; facial record header 20; feature points 8 each; image
        # information 12; then the image itself to the end of the facial record.
        record_length, points = struct.unpack(">IH", block[14:20])
        start = 14 + 20 + 8 * points + 12
        end = 14 + record_length
        if start < end <= len(block):
            image = block[start:end]
    if image is None or _format(image) is None:
        image = _scan(block)
    if image is None:
        return None
    fmt = _format(image)
    return FaceImage(image, fmt) if fmt else None


def _format(image: bytes) -> str | None:
    if image.startswith(_JPEG):
        return "jpeg"
    if image.startswith(_JP2) or image.startswith(_J2K):
        return "jpeg2000"
    return None


def _scan(block: bytes) -> bytes | None:
    # Records with vendor quirks in their headers: find the image by its signature.
    found = [i for i in (block.find(m) for m in (_JPEG, _JP2, _J2K)) if i >= 0]
    return block[min(found) :] if found else None
