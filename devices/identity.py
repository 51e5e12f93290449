"""The identity a card carries, as plain data, and the GB 11643-1999 ID number rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


class Sex(Enum):
    """GB/T 2261.1 sex codes."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    UNSPECIFIED = "9"


def id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def is_valid_id_number(value: str) -> bool:
    """True when value is an 18-character resident ID number with a real birth date and check."""
    if len(value) != 18 or not value.isascii():
        return False
    body, check = value[:17], value[17].upper()
    if not body.isdigit():
        return False
    try:
        dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return False
    return id_check_character(body) == check


@dataclass(frozen=True, slots=True)
class Identity:
    """What a card told us about its holder. Photo bytes are kept raw (the card's own format)."""

    name: str
    sex: Sex
    nation: str
    birth_date: dt.date
    address: str
    id_number: str
    issuing_authority: str
    valid_from: dt.date | None
    valid_until: dt.date | None  # None means 长期 (no expiry)
    photo: bytes | None = None
    photo_format: str = ""  # "wlt", "jpeg", "jpeg2000" or "" when there is none
    source: str = ""  # which reader it came from

    def __repr__(self) -> str:
        # Identities reach logs through reprs of containers; never let the full values out.
        return f"Identity(source={self.source!r}, id_number=<{len(self.id_number)} chars>)"
