"""The card readers a terminal uses, from the `card_readers` setting.

Each entry names a backend and, after a colon, where it is:

    "serial"                     a GA/T 467 resident-ID reader, port found by probing
    "serial:/dev/ttyUSB0"        the same on a given port
    "sdt:/opt/reader/libsdtapi.so"   a resident-ID reader through its vendor's SDT library
    "pcsc"                       every PC/SC reader (chip passports, ICAO residence cards)
    "simulated"                  the demo reader

Backends are imported only when configured, so a terminal without PC/SC never loads pyscard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from devices.readers.base import CardReader

if TYPE_CHECKING:
    from kiosk.access_keys import AccessKeys


class ReaderSettingError(ValueError):
    """A card_readers entry names no known backend or lacks what it needs."""


KINDS = ("serial", "sdt", "pcsc", "simulated")


def check_reader_entries(entries: Sequence[str]) -> None:
    """Fail at configuration time, not when the first citizen arrives."""
    for entry in entries:
        kind, _, where = entry.partition(":")
        if kind not in KINDS:
            raise ReaderSettingError(f"unknown card reader {entry!r}; use one of {KINDS}")
        if kind == "sdt" and not where:
            raise ReaderSettingError("an sdt reader needs its library: 'sdt:/path/to/lib.so'")
        if kind in ("pcsc", "simulated") and where:
            raise ReaderSettingError(f"{kind} takes no location")


def build_readers(
    entries: Sequence[str], access_keys: AccessKeys, *, exclude_ports: Sequence[str] = ()
) -> list[CardReader]:
    check_reader_entries(entries)
    readers: list[CardReader] = []
    for entry in entries:
        kind, _, where = entry.partition(":")
        if kind == "serial":
            from devices.readers.gat467 import Gat467Reader, SerialSettings

            settings = SerialSettings(port=where or None, exclude_ports=tuple(exclude_ports))
            readers.append(Gat467Reader(settings=settings))
        elif kind == "sdt":
            from devices.readers.sdt import SdtReader, SdtSettings

            readers.append(SdtReader(SdtSettings(library=Path(where))))
        elif kind == "pcsc":
            from devices.cards.base import ProfileRegistry
            from devices.cards.emrtd import EmrtdProfile
            from devices.readers.pcsc import PcscReader

            readers.append(PcscReader(ProfileRegistry([EmrtdProfile(access_key=access_keys)])))
        else:
            from devices.readers.simulated import SimulatedReader

            readers.append(SimulatedReader())
    return readers
