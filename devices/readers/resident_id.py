"""The second-generation resident ID card as readers deliver it, and the rules every reader of it
shares: the 256-byte text block (UCS-2LE, space padded) decoded into an Identity, the reader's
status codes turned into ReaderError, an optional vendor photo decoder, and the card-presence
bookkeeping that keeps one card on the reader to one IDENTITY event.

Both the GA/T 467 serial backend and the vendor-SDK backend use this module; neither decodes
card data on its own.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devices.identity import Identity, Sex, is_valid_id_number
from devices.readers.base import EventKind, EventSink, ReaderError, ReaderEvent

log = logging.getLogger(__name__)

TEXT_SIZE = 256
PHOTO_SIZE = 1024
PHOTO_FORMAT = "wlt"
LONG_TERM = "长期"

# (field, size in bytes) in card order; the sizes add up to TEXT_SIZE.
TEXT_FIELDS: tuple[tuple[str, int], ...] = (
    ("name", 30),
    ("sex", 2),
    ("nation", 4),
    ("birth_date", 16),
    ("address", 70),
    ("id_number", 36),
    ("issuing_authority", 30),
    ("valid_from", 16),
    ("valid_until", 16),
    ("reserved", 36),
)
# Inside "reserved", the card-type flag sits at byte 248 (a blank on resident ID cards).
_TYPE_FLAG_OFFSET = 248
_RESIDENCE_PERMIT = "J"  # Hong Kong / Macao / Taiwan residents: same layout, no nation
_OTHER_LAYOUTS = frozenset("IY")  # foreigners' permanent residence cards: another layout

# GB 3304 nation codes and names.
NATIONS: dict[str, str] = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝",
    "08": "壮", "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白",
    "15": "土家", "16": "哈尼", "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤",
    "22": "畲", "23": "高山", "24": "拉祜", "25": "水", "26": "东乡", "27": "纳西", "28": "景颇",
    "29": "柯尔克孜", "30": "土", "31": "达斡尔", "32": "仫佬", "33": "羌", "34": "布朗",
    "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯", "39": "阿昌", "40": "普米",
    "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克", "46": "德昂",
    "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺",
    "97": "其他", "98": "外国血统中国籍人士",
}  # fmt: skip
NATION_CODES: dict[str, str] = {name: code for code, name in NATIONS.items()}


class CardDataError(ValueError):
    """The card's data cannot be turned into an Identity; error says which advice fits."""

    def __init__(self, error: ReaderError, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def _field_text(block: bytes, start: int, size: int) -> str:
    try:
        text = block[start : start + size].decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise CardDataError(ReaderError.BAD_DATA, f"text at byte {start} is not UCS-2") from exc
    return text.strip(" \x00")


def _date(text: str, what: str) -> dt.date:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise CardDataError(ReaderError.BAD_DATA, f"{what} is not YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise CardDataError(ReaderError.BAD_DATA, f"{what} is not a real date") from exc


def decode_identity(text: bytes, photo: bytes | None, source: str) -> Identity:
    """The Identity in a card's text block; raises CardDataError when it cannot be trusted."""
    if len(text) != TEXT_SIZE:
        raise CardDataError(ReaderError.BAD_DATA, f"text block is {len(text)} bytes, not 256")
    if photo is not None and len(photo) != PHOTO_SIZE:
        raise CardDataError(ReaderError.BAD_DATA, f"photo block is {len(photo)} bytes, not 1024")
    flag = _field_text(text, _TYPE_FLAG_OFFSET, 2)
    if flag in _OTHER_LAYOUTS:
        raise CardDataError(ReaderError.UNSUPPORTED_CARD, f"card type {flag!r} has another layout")
    fields: dict[str, str] = {}
    offset = 0
    for name, size in TEXT_FIELDS:
        fields[name] = _field_text(text, offset, size)
        offset += size

    try:
        sex = Sex(fields["sex"])
    except ValueError:
        raise CardDataError(ReaderError.BAD_DATA, "sex code is not GB/T 2261.1") from None
    nation_code = fields["nation"]
    if flag == _RESIDENCE_PERMIT and nation_code == "":
        nation = ""
    elif nation_code in NATIONS:
        nation = NATIONS[nation_code]
    else:
        raise CardDataError(ReaderError.BAD_DATA, "nation code is not GB 3304")
    birth = _date(fields["birth_date"], "birth date")
    id_number = fields["id_number"].upper()
    if not is_valid_id_number(id_number):
        raise CardDataError(ReaderError.BAD_DATA, "ID number fails the GB 11643 check")
    if id_number[6:14] != fields["birth_date"]:
        raise CardDataError(ReaderError.BAD_DATA, "ID number and birth date disagree")
    valid_from = _date(fields["valid_from"], "validity start")
    valid_until = (
        None if fields["valid_until"] == LONG_TERM else _date(fields["valid_until"], "validity end")
    )
    if valid_until is not None and valid_until < valid_from:
        raise CardDataError(ReaderError.BAD_DATA, "validity ends before it starts")
    if not fields["name"]:
        raise CardDataError(ReaderError.BAD_DATA, "name is empty")
    return Identity(
        name=fields["name"],
        sex=sex,
        nation=nation,
        birth_date=birth,
        address=fields["address"],
        id_number=id_number,
        issuing_authority=fields["issuing_authority"],
        valid_from=valid_from,
        valid_until=valid_until,
        photo=photo,
        photo_format=PHOTO_FORMAT if photo is not None else "",
        source=source,
    )


def encode_text(identity: Identity, *, type_flag: str = " ") -> bytes:
    """The text block a card holding identity carries: the inverse of decode_identity."""
    values = {
        "name": identity.name,
        "sex": identity.sex.value,
        "nation": NATION_CODES.get(identity.nation, ""),
        "birth_date": identity.birth_date.strftime("%Y%m%d"),
        "address": identity.address,
        "id_number": identity.id_number,
        "issuing_authority": identity.issuing_authority,
        "valid_from": identity.valid_from.strftime("%Y%m%d") if identity.valid_from else "",
        "valid_until": (
            identity.valid_until.strftime("%Y%m%d") if identity.valid_until else LONG_TERM
        ),
        "reserved": "",
    }
    block = bytearray()
    for name, size in TEXT_FIELDS:
        raw = values[name].encode("utf-16-le")
        if len(raw) > size:
            raise ValueError(f"{name} does not fit in {size} bytes")
        block += raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    block[_TYPE_FLAG_OFFSET : _TYPE_FLAG_OFFSET + 2] = type_flag.encode("utf-16-le")[:2]
    return bytes(block)


# -- reader status codes (SW3 in GA/T 467 replies; the vendor SDK returns the same values) -------

SW_OK = 0x90
SW_FOUND = 0x9F
SW_NO_CARD = 0x80


@dataclass(frozen=True, slots=True)
class Status:
    error: ReaderError
    detail: str


STATUS: dict[int, Status] = {
    0x10: Status(ReaderError.OTHER, "reader received a bad check byte"),
    0x11: Status(ReaderError.OTHER, "reader received a bad length"),
    0x21: Status(ReaderError.OTHER, "reader rejected the command"),
    0x23: Status(ReaderError.OTHER, "operation not permitted"),
    0x24: Status(ReaderError.OTHER, "reader reports an unrecognised error"),
    0x31: Status(ReaderError.BAD_DATA, "card failed to authenticate the SAM"),
    0x32: Status(ReaderError.BAD_DATA, "SAM failed to authenticate the card"),
    0x33: Status(ReaderError.BAD_DATA, "card information failed verification"),
    0x40: Status(ReaderError.UNSUPPORTED_CARD, "unrecognised card type"),
    0x41: Status(ReaderError.CARD_MOVED, "reading the card failed"),
    0x47: Status(ReaderError.OTHER, "random number generation failed"),
    0x60: Status(ReaderError.SAM_FAULT, "SAM self-test failed"),
    0x66: Status(ReaderError.SAM_FAULT, "SAM not authorised"),
    0x80: Status(ReaderError.CARD_MOVED, "card not found"),
    0x81: Status(ReaderError.CARD_MOVED, "selecting the card failed"),
    0x91: Status(ReaderError.BAD_DATA, "card has no such content"),
}


def status_error(code: int) -> Status:
    """What a failing status code means for the person at the reader."""
    return STATUS.get(code, Status(ReaderError.OTHER, f"reader status 0x{code:02X}"))


# -- the photo ---------------------------------------------------------------------------------

# A decoder turns the card's raw photo (wlt) into image bytes a screen can show; it raises on
# failure. None is configured by default: the screen then shows a placeholder.
PhotoDecoder = Callable[[bytes], bytes]

PHOTO_WIDTH = 102
PHOTO_HEIGHT = 126


def decoded_photo(identity: Identity, decoder: PhotoDecoder | None) -> bytes | None:
    """The holder's photo as image bytes, or None when there is no decoder or it fails."""
    if decoder is None or identity.photo is None or identity.photo_format != PHOTO_FORMAT:
        return None
    try:
        return decoder(identity.photo)
    except Exception as exc:  # a vendor decoder's failure must not cost the citizen the visit
        log.warning("photo decoder failed: %s", type(exc).__name__)
        return None


def bmp_from_bgr(pixels: bytes, width: int = PHOTO_WIDTH, height: int = PHOTO_HEIGHT) -> bytes:
    """A 24-bit BMP file around top-down BGR rows (the pixel order BMP itself uses)."""
    row = width * 3
    if len(pixels) != row * height:
        raise ValueError(f"expected {row * height} pixel bytes, got {len(pixels)}")
    stride = (row + 3) & ~3
    body = b"".join(pixels[y * row : (y + 1) * row] + bytes(stride - row) for y in range(height))
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(body), 0, 0, 14 + len(info))
    return header + info + body


def load_wlt_decoder(
    library: Path | str, *, function: str = "unpack", vendor_code: int = 602
) -> PhotoDecoder:
    """A PhotoDecoder from a vendor's wlt library with the common entry point
    ``int unpack(char *src, char *dst, int bmpSave)``: src is the 1024-byte photo, dst receives
    102×126 BGR pixels, bmpSave is the vendor's code for "decode in memory"; 1 means success.

    Raises OSError or AttributeError when the library or its function cannot be loaded.
    """
    lib = ctypes.CDLL(str(library))
    unpack = getattr(lib, function)
    unpack.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
    unpack.restype = ctypes.c_int
    lock = threading.Lock()  # vendor decoders keep static state; one call at a time
    pixel_bytes = PHOTO_WIDTH * PHOTO_HEIGHT * 3

    def decode(photo: bytes) -> bytes:
        if len(photo) != PHOTO_SIZE:
            raise ValueError("photo is not 1024 bytes")
        # Some decoders write past the pixels (a BMP header or padding): leave them room.
        out = ctypes.create_string_buffer(pixel_bytes + 4096)
        with lock:
            result = unpack(photo, out, vendor_code)
        if result != 1:
            raise RuntimeError(f"photo decoder returned {result}")
        return bmp_from_bgr(out.raw[:pixel_bytes])

    return decode


# -- card presence -----------------------------------------------------------------------------


class Presence:
    """Turns poll results into events: one CARD_PRESENT, one IDENTITY and one CARD_REMOVED per
    card placed on the reader, however many polls it stays there.

    Used by one device thread only.
    """

    def __init__(
        self, reader: str, sink: EventSink, *, removal_misses: int = 2, max_attempts: int = 3
    ) -> None:
        if removal_misses < 1 or max_attempts < 1:
            raise ValueError("removal_misses and max_attempts must be at least 1")
        self._reader = reader
        self._sink = sink
        self._removal_misses = removal_misses
        self._max_attempts = max_attempts
        self.present = False
        self._read = False
        self._attempts = 0
        self._misses = 0

    def emit(
        self,
        kind: EventKind,
        *,
        identity: Identity | None = None,
        error: ReaderError | None = None,
        detail: str = "",
    ) -> None:
        event = ReaderEvent(kind, self._reader, identity=identity, error=error, detail=detail)
        try:
            self._sink(event)
        except Exception:  # the application's sink must not stop the device thread
            log.exception("reader event sink failed")

    def error(self, error: ReaderError, detail: str) -> None:
        self.emit(EventKind.ERROR, error=error, detail=detail)

    def card_found(self) -> bool:
        """A card is in the field; True when it should be read now."""
        self._misses = 0
        if not self.present:
            self.present = True
            self._read = False
            self._attempts = 0
            self.emit(EventKind.CARD_PRESENT)
        return not self._read and self._attempts < self._max_attempts

    def no_card(self) -> None:
        if not self.present:
            return
        self._misses += 1
        if self._misses >= self._removal_misses:
            self.forget()
            self.emit(EventKind.CARD_REMOVED)

    def forget(self) -> None:
        """The reader went away: whatever card was on it is no longer known."""
        self.present = False
        self._read = False
        self._attempts = 0
        self._misses = 0

    def read_succeeded(self, identity: Identity) -> None:
        self._read = True
        self.emit(EventKind.IDENTITY, identity=identity)

    def read_failed(self, error: ReaderError, detail: str) -> None:
        self._attempts += 1
        self.error(error, detail)
