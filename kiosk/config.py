"""One typed configuration, loaded from TOML with defaults; paths come from platformdirs."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from kiosk.errors import UserFacingError
from kiosk.i18n import LANGUAGES, N_
from kiosk.readers import ReaderSettingError, check_reader_entries
from offline_queue.keys import KeyStore

APP_NAME = "hall-terminal"


class Mode(Enum):
    KIOSK = "kiosk"
    COUNTER = "counter"
    RURAL = "rural"


class PrinterKind(Enum):
    PDF = "pdf"  # a PDF file per receipt in receipts_dir (the demo)
    CUPS = "cups"  # the system's CUPS queue cups_queue
    ESCPOS = "escpos"  # an ESC/POS thermal printer at escpos_address


PAPER_WIDTHS_MM = (80, 58)
# CUPS refuses queue names with these (and control characters); 127 characters at most.
_CUPS_QUEUE_FORBIDDEN = frozenset(" \t/\\#?'\"")
_CUPS_QUEUE_MAX = 127


class ConfigError(UserFacingError):
    def __init__(self, detail: str) -> None:
        super().__init__(N_("The terminal settings are not valid. Please ask staff for help."))
        self.detail = detail


def default_data_dir() -> Path:
    override = os.environ.get("HALL_DATA_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True, slots=True)
class Config:
    mode: Mode = Mode.KIOSK
    language: str = "zh_CN"
    terminal_id: str = "K01"
    hall_name: str = ""
    platform_url: str = "http://127.0.0.1:8700"
    data_dir: Path = field(default_factory=default_data_dir)
    receipts_dir: Path | None = None  # default: <data_dir>/receipts
    idle_timeout_s: float = 90.0  # no touch for this long: ask "are you still there?"
    idle_warning_s: float = 30.0  # then this long to answer before the session ends
    done_reset_s: float = 30.0  # after the receipt, back to the start
    staff_idle_s: float = 600.0  # counter and rural: staff signed out after this long untouched
    voice: bool = True
    font_scale: float = 1.0
    receipt_font: Path | None = None
    # Taking the card away mid-visit: True ends the visit and wipes it, False asks whether to go
    # on; unset means by mode (a kiosk ends it, staff at a counter or service point are asked).
    card_removal_ends_session: bool | None = None
    # After the platform has a submission only its receipt details (number, service, time, masked
    # name) stay, for reprints, this many days.
    delivered_retention_days: float = 30.0
    # Where the outbox key lives: "auto" (the key file if there is one, else the OS keyring if
    # there is one, else a new 0600 key file), "file" or "keyring".
    outbox_key_store: str = "auto"
    # Card readers, e.g. ("serial", "pcsc") or ("sdt:/opt/reader/libsdtapi.so",); see
    # kiosk/readers.py. The demo adds its simulated reader.
    card_readers: tuple[str, ...] = ()
    # The card reader vendor's library that decodes resident ID photos (wlt); none: a placeholder.
    photo_decoder: Path | None = None
    # CSCA certificates (PEM/DER) and ICAO master lists (.ml), a file or a directory: a chip
    # passport's data are checked against them (Passive Authentication). None: chip passports
    # are read but not proven genuine, and staff are told so.
    passport_trust_store: Path | None = None
    # The receipt printer: "pdf" (a file per receipt, the demo), "cups" (the CUPS queue
    # cups_queue) or "escpos" (a thermal printer at escpos_address: tcp://host:port,
    # usb:VID:PID or serial:/dev/ttyUSB0), on a roll paper_mm wide (80 or 58).
    printer: PrinterKind = PrinterKind.PDF
    cups_queue: str = ""
    escpos_address: str = "tcp://127.0.0.1:9100"
    paper_mm: int = 80

    @property
    def card_removal_ends_visit(self) -> bool:
        if self.card_removal_ends_session is None:
            return self.mode is Mode.KIOSK
        return self.card_removal_ends_session

    @property
    def receipts_path(self) -> Path:
        return self.receipts_dir or self.data_dir / "receipts"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite3"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "outbox.key"

    @property
    def catalogue_cache_path(self) -> Path:
        return self.data_dir / "catalogue.json"

    @property
    def counters_path(self) -> Path:
        return self.data_dir / "receipt-counter.json"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


_HEX_ID = re.compile(r"(0x)?[0-9A-Fa-f]{1,4}")
_PATH_FIELDS = {"data_dir", "receipts_dir", "receipt_font", "photo_decoder", "passport_trust_store"}


def from_mapping(values: dict[str, Any], base: Config | None = None) -> Config:
    """A Config from TOML-like values; unknown keys and wrong types are errors, not surprises."""
    config = base or Config()
    known = {f.name for f in fields(Config)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        try:
            changes[key] = _convert(key, value, getattr(config, key))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {key!r}: {exc}") from exc
    result = replace(config, **changes)
    if result.language not in LANGUAGES:
        raise ConfigError(f"language must be one of {LANGUAGES}")
    if result.staff_idle_s <= 0:
        raise ConfigError("staff_idle_s must be positive")
    if result.idle_timeout_s <= 0 or result.idle_warning_s < 20:
        # WCAG 2.2.1: at least 20 seconds to answer a time-limit warning
        raise ConfigError("idle_timeout_s must be positive and idle_warning_s at least 20")
    if result.outbox_key_store not in {store.value for store in KeyStore}:
        raise ConfigError("outbox_key_store must be auto, file or keyring")
    try:
        check_reader_entries(result.card_readers)
    except ReaderSettingError as exc:
        raise ConfigError(str(exc)) from exc
    if result.delivered_retention_days < 0:
        raise ConfigError("delivered_retention_days must not be negative")
    _check_printer(result)
    return result


def _check_printer(config: Config) -> None:
    if config.paper_mm not in PAPER_WIDTHS_MM:
        raise ConfigError(f"paper_mm must be 80 or 58, not {config.paper_mm}")
    queue = config.cups_queue
    if queue and (
        len(queue) > _CUPS_QUEUE_MAX
        or any(ch in _CUPS_QUEUE_FORBIDDEN or not ch.isprintable() for ch in queue)
    ):
        raise ConfigError(
            f"cups_queue {queue!r} is not a CUPS queue name "
            "(no spaces, tabs, / \\ # ? or quotes; at most 127 characters)"
        )
    if config.printer is PrinterKind.CUPS and not queue:
        raise ConfigError('printer = "cups" needs cups_queue, the name of the CUPS queue')
    try:
        check_escpos_address(config.escpos_address)
    except ValueError as exc:
        raise ConfigError(f"escpos_address: {exc}") from exc


def check_escpos_address(address: str) -> None:
    """ValueError unless address is tcp://host[:port], usb:VID:PID (hexadecimal) or
    serial:/dev/DEVICE[:baud]."""
    text = address.strip()
    if text.startswith("tcp://"):
        parts = urlsplit(text)
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
        except ValueError as exc:
            raise ValueError(f"bad port in {address!r} (1 to 65535)") from exc
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{address!r} is not tcp://host:port")
        if parts.port == 0:
            raise ValueError(f"bad port in {address!r} (1 to 65535)")
        return
    if text.startswith("usb:"):
        ids = text[4:].split(":")
        if len(ids) != 2 or not all(_HEX_ID.fullmatch(value) for value in ids):
            raise ValueError(f"{address!r} is not usb:VID:PID (hexadecimal, e.g. usb:0416:5011)")
        if 0 in (int(value, 16) for value in ids):
            raise ValueError(f"{address!r}: USB ids are not zero")
        return
    if text.startswith("serial:"):
        device, _, baud = text[7:].partition(":")
        if not device.startswith("/") or (baud and (not baud.isdigit() or int(baud) <= 0)):
            raise ValueError(f"{address!r} is not serial:/dev/DEVICE or serial:/dev/DEVICE:BAUD")
        return
    raise ValueError(f"{address!r}: expected tcp://host:port, usb:VID:PID or serial:/dev/DEVICE")


def _convert(key: str, value: Any, current: Any) -> Any:
    if key == "mode":
        return Mode(value)
    if key in ("printer", "paper_mm"):
        return _convert_printer(key, value)
    if key == "card_readers":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError("expected a list of texts")
        return tuple(value)
    if key in _PATH_FIELDS:
        return None if value in (None, "") else Path(value).expanduser()
    if isinstance(current, bool) or key == "card_removal_ends_session":
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("expected a number")
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value
    return value


def _convert_printer(key: str, value: Any) -> Any:
    if key == "printer":
        try:
            return PrinterKind(value)
        except ValueError:
            raise ValueError(
                f"expected one of {', '.join(k.value for k in PrinterKind)}, not {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise TypeError("expected a whole number of millimetres (80 or 58)")
    return int(value)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    path = path or default_config_path()
    values: dict[str, Any] = {}
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_mapping(values)
