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

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from devices.readers.base import CardReader

if TYPE_CHECKING:
    from kiosk.access_keys import AccessKeys


# In the data directory: the serial reader this terminal trusts (devices/readers/serial_pin.py).
log = logging.getLogger(__name__)

READER_PIN_FILE = "reader-pin.json"


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
    entries: Sequence[str],
    access_keys: AccessKeys,
    *,
    exclude_ports: Sequence[str] = (),
    trust_store: Path | None = None,
    pin_path: Path | None = None,
) -> list[CardReader]:
    """trust_store: the CSCA certificates chip passports are checked against (Passive
    Authentication); ReaderSettingError when it cannot be read. pin_path: where the serial
    reader found first is recorded, so that another device is not trusted silently."""
    check_reader_entries(entries)
    readers: list[CardReader] = []
    for entry in entries:
        kind, _, where = entry.partition(":")
        if kind == "serial":
            from devices.readers.gat467 import Gat467Reader, SerialSettings

            settings = SerialSettings(
                port=where or None, exclude_ports=tuple(exclude_ports), pin_path=pin_path
            )
            readers.append(Gat467Reader(settings=settings))
        elif kind == "sdt":
            from devices.readers.sdt import SdtReader, SdtSettings

            readers.append(SdtReader(SdtSettings(library=Path(where))))
        elif kind == "pcsc":
            from devices.cards.base import ProfileRegistry
            from devices.cards.emrtd import EmrtdProfile
            from devices.cards.passive_auth import TrustStore, TrustStoreError
            from devices.readers.pcsc import PcscReader

            try:
                trust = TrustStore.load(trust_store) if trust_store else None
            except TrustStoreError as exc:
                raise ReaderSettingError(f"passport_trust_store: {exc}") from exc
            profile = EmrtdProfile(access_key=access_keys, trust_store=trust)
            readers.append(PcscReader(ProfileRegistry([profile])))
        else:
            from devices.readers.simulated import SimulatedReader

            readers.append(SimulatedReader())
    return readers


def forget_reader_pin(data_dir: Path) -> tuple[bool, str]:
    """Forget the serial reader this terminal trusts: whether that worked, and the sentence for
    the staff who asked."""
    from devices.readers.serial_pin import forget_pin
    from kiosk.i18n import _

    try:
        forgotten = forget_pin(data_dir / READER_PIN_FILE)
    except OSError as exc:
        log.error("card reader pin in %s not removed: %s", data_dir, exc)
        return False, _("The card reader record could not be removed.")
    if forgotten:
        return True, _(
            "The recorded card reader was forgotten. The next start records the reader it finds."
        )
    return True, _("No card reader was recorded on this terminal.")
