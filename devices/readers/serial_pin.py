"""The serial card reader a terminal trusts: which port it is on and what the system says about it.

The first reader found by probing is pinned: its port, the USB attributes the system reports for
that port (vendor and product id, serial number, where on the USB tree it is plugged) and the
SAM id the reader gives. Later starts use that port only; a reader answering elsewhere, or a
device with other attributes on the pinned port, is refused until staff forget the pin on
purpose (forget_pin). The pin is a small JSON file, 0600, replaced atomically.

Nothing here talks to a reader; the GA/T 467 backend asks and this module remembers and compares.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

PIN_VERSION = 1
PIN_FILE_MODE = 0o600
MAX_PIN_BYTES = 16_384  # a pin is a few hundred bytes; anything far larger is not one


class PinDamaged(Exception):
    """The pin file exists but cannot be read as a pin. It is never replaced silently: a
    damaged pin could otherwise be used to make the terminal trust whatever answers next."""


@dataclass(frozen=True, slots=True)
class UsbAttributes:
    """What the operating system reports about the USB device behind a serial port."""

    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    location: str | None = None  # the USB path it is plugged into, e.g. "1-1.2:1.0"

    def describe(self) -> str:
        vid = f"{self.vid:04x}" if self.vid is not None else "-"
        pid = f"{self.pid:04x}" if self.pid is not None else "-"
        return f"{vid}:{pid} serial {self.serial_number or '-'} at {self.location or '-'}"


# Given a port path, its USB attributes, or None where the system gives none (a built-in UART,
# a pseudo-terminal, a port not listed). Injectable so tests can stand in for USB hardware.
AttributeLookup = Callable[[str], UsbAttributes | None]


class ListedPort(Protocol):
    """The part of pyserial's ListPortInfo this module reads."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    location: str | None


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def attributes_among(port: str, listed: Iterable[ListedPort]) -> UsbAttributes | None:
    """The USB attributes of port among the system's listed ports (by path, links resolved)."""
    for info in listed:
        if not _same_file(info.device, port):
            continue
        found = UsbAttributes(
            vid=info.vid,
            pid=info.pid,
            serial_number=info.serial_number or None,
            location=info.location or None,
        )
        return None if found == UsbAttributes() else found
    return None


def usb_attributes(port: str) -> UsbAttributes | None:
    """The USB attributes pyserial's port listing gives for port, or None."""
    import serial.tools.list_ports

    return attributes_among(port, serial.tools.list_ports.comports())


@dataclass(frozen=True, slots=True)
class ReaderPin:
    port: str
    usb: UsbAttributes | None = None
    sam_id: str | None = None  # hex of the reader's SAM id reply; None: it gave none

    def to_json(self) -> dict[str, Any]:
        usb = None
        if self.usb is not None:
            usb = {
                "vid": self.usb.vid,
                "pid": self.usb.pid,
                "serial_number": self.usb.serial_number,
                "location": self.usb.location,
            }
        return {"version": PIN_VERSION, "port": self.port, "usb": usb, "sam_id": self.sam_id}

    @classmethod
    def from_json(cls, value: object) -> ReaderPin:
        if not isinstance(value, dict):
            raise PinDamaged("not a JSON object")
        if value.get("version") != PIN_VERSION:
            raise PinDamaged(f"unknown version {value.get('version')!r}")
        if set(value) != {"version", "port", "usb", "sam_id"}:
            raise PinDamaged(f"unexpected fields {sorted(value)}")
        port = value["port"]
        if not isinstance(port, str) or not port:
            raise PinDamaged("no port")
        sam_id = _optional(value, "sam_id", str)
        raw_usb = value["usb"]
        usb: UsbAttributes | None = None
        if raw_usb is not None:
            if not isinstance(raw_usb, dict) or set(raw_usb) != {
                "vid",
                "pid",
                "serial_number",
                "location",
            }:
                raise PinDamaged("usb is not a set of attributes")
            usb = UsbAttributes(
                vid=_optional(raw_usb, "vid", int),
                pid=_optional(raw_usb, "pid", int),
                serial_number=_optional(raw_usb, "serial_number", str),
                location=_optional(raw_usb, "location", str),
            )
        return cls(port=port, usb=usb, sam_id=sam_id)


_T = TypeVar("_T")


def _optional(mapping: dict[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = mapping.get(key)
    # bool is an int to Python, never a vendor id
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise PinDamaged(f"{key} is a {type(value).__name__}, not a {kind.__name__}")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """How what answers differs from the pin: for the log and the event's detail (no personal
    data: ports, USB ids and SAM ids describe hardware)."""

    differences: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.differences)

    def describe(self) -> str:
        return "; ".join(self.differences)


def compare(
    pin: ReaderPin,
    *,
    port: str | None = None,
    usb: UsbAttributes | None,
    sam_id: str | None = None,
    check_sam: bool = False,
) -> Mismatch:
    """What differs between the pin and a device: its port (when given), its USB attributes
    (always), and its SAM id (when check_sam and the pin has one)."""
    found: list[str] = []
    # Ports are compared as written: the pin keeps the name the reader was found under.
    if port is not None and port != pin.port:
        found.append(f"reader on {port}, pinned to {pin.port}")
    if usb != pin.usb:
        pinned = pin.usb.describe() if pin.usb else "none"
        now = usb.describe() if usb else "none"
        found.append(f"USB attributes {now}, pinned {pinned}")
    if check_sam and pin.sam_id is not None and sam_id != pin.sam_id:
        found.append(f"SAM id {sam_id or 'not given'}, pinned {pin.sam_id}")
    return Mismatch(tuple(found))


class PinStore:
    """The pin file: load, save (atomically, 0600), forget."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ReaderPin | None:
        """The pin, or None when there is none yet; PinDamaged when the file is not a pin."""
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(MAX_PIN_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PinDamaged(f"cannot be read: {type(exc).__name__}") from exc
        if len(raw) > MAX_PIN_BYTES:
            raise PinDamaged(f"larger than {MAX_PIN_BYTES} bytes")
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PinDamaged(f"not JSON: {exc}") from exc
        return ReaderPin.from_json(value)

    def save(self, pin: ReaderPin) -> None:
        """Write beside, fsync, rename over, fsync the folder: a power cut leaves the old pin or
        the new one, never half of one."""
        folder = self.path.parent
        data = json.dumps(pin.to_json(), indent=2, sort_keys=True).encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), PIN_FILE_MODE)
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)

    def forget(self) -> bool:
        """Remove the pin; True when there was one. The next start pins the reader it finds."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.path.parent)
        return True


def forget_pin(path: Path) -> bool:
    """Staff re-pin on purpose: forget the pinned reader (damaged pin files included)."""
    forgotten = PinStore(path).forget()
    log.warning("card reader pin %s %s", path, "forgotten" if forgotten else "was not there")
    return forgotten


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
