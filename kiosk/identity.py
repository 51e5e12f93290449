"""Masking of personal values for screens and receipts, where the full value is not needed.

The ID number rules themselves (check character, validity) live with the card data in
devices.identity; this module decides how much of a value a person standing nearby may see.
"""

from __future__ import annotations

import re
import unicodedata

MASK = "*"

# Separators inside a name stay visible: they tell the reader how the name is built without
# revealing any of it (买买提·艾力, Jean-Luc Picard).
_NAME_SEPARATORS = frozenset(" ·•・.-'")
_LATIN_PART = re.compile(r"[^\s\-]+|[\s\-]+")


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def mask_name(name: str) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳娜娜 -> 欧**娜, John Smith -> J*** S****.

    A one-character name is masked entirely: showing it would show all of it.
    """
    name = " ".join(name.split())
    if not name:
        return ""
    letters = [ch for ch in name if ch not in _NAME_SEPARATORS]
    if letters and all(_is_latin_letter(ch) for ch in letters):
        return "".join(
            part if part[0].isspace() or part[0] == "-" else part[0] + MASK * (len(part) - 1)
            for part in _LATIN_PART.findall(name)
        )
    positions = [i for i, ch in enumerate(name) if ch not in _NAME_SEPARATORS]
    if len(positions) <= 1:
        keep: set[int] = set()
    elif len(positions) == 2:
        keep = {positions[0]}
    else:
        keep = {positions[0], positions[-1]}
    return "".join(ch if ch in _NAME_SEPARATORS or i in keep else MASK for i, ch in enumerate(name))


def mask_id_number(value: str) -> str:
    """11010519491231002X -> 110105********002X: region code and last four stay readable.

    Shorter document numbers (passports, permits) keep only their first and last character.
    """
    value = value.strip().upper()
    n = len(value)
    if n >= 11:
        head, tail = 6, 4
    elif n >= 3:
        head, tail = 1, 1
    else:
        return MASK * n
    return value[:head] + MASK * (n - head - tail) + value[n - tail :]
