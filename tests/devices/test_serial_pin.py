"""The pinned GA/T 467 reader: found once, then trusted on its port only.

The readers are the pseudo-terminal simulator; pseudo-terminals have no USB attributes, so tests
that need them give the reader a lookup standing in for the system's port listing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.readers import serial_pin
from devices.readers.base import EventKind, ReaderError
from devices.readers.gat467 import (
    FIND_CARD,
    READ_BASE,
    SAM_ID,
    SAM_STATUS,
    Frame,
    Gat467Reader,
    SerialSettings,
    build_response,
)
from devices.readers.serial_pin import (
    PinDamaged,
    PinStore,
    ReaderPin,
    UsbAttributes,
    attributes_among,
    forget_pin,
    usb_attributes,
)
from tests.devices.conftest import Events
from tests.fixtures.gat467_sim import PERSON, PHOTO, Gat467Simulator, MakeSimulator

pytestmark = pytest.mark.real_device

NAME = "hall reader"
FAST = SerialSettings(read_timeout_s=0.6, reconnect_interval_s=0.2, detect_interval_s=0.2)
READER_USB = UsbAttributes(vid=0x1A86, pid=0x7523, serial_number="RD0042", location="1-1.2:1.0")
StartReader = Callable[..., Gat467Reader]


class SamIdSimulator(Gat467Simulator):
    """A reader that also answers the read-SAM-id command (12 FF) with its id (None: silence)."""

    def __init__(self, workdir: Path, *, sam_id: bytes | None, **options: Any) -> None:
        self.sam_id = sam_id  # before the simulator's thread starts answering
        super().__init__(workdir, **options)

    def _answer(self, frame: Frame) -> None:
        if frame.payload[:2] != bytes(SAM_ID):
            super()._answer(frame)
            return
        with self._cond:
            self.counts[SAM_ID] += 1
            self._cond.notify_all()
            sam_id = self.sam_id
        if sam_id is not None:
            self._send(build_response(0x90, sam_id))


MakeSamSimulator = Callable[..., SamIdSimulator]


@pytest.fixture
def make_sam_sim(tmp_path: Path) -> Iterator[MakeSamSimulator]:
    made: list[SamIdSimulator] = []

    def make(sam_id: bytes | None, **options: Any) -> SamIdSimulator:
        workdir = tmp_path / f"samsim{len(made)}"
        workdir.mkdir()
        sim = SamIdSimulator(workdir, sam_id=sam_id, **options)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def pin_path(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    return data_dir / "reader-pin.json"


class FakeUsb:
    """Stands in for the system's port listing: what each port path reports, changeable."""

    def __init__(self) -> None:
        self.ports: dict[str, UsbAttributes] = {}
        self.asked: list[str] = []

    def __call__(self, port: str) -> UsbAttributes | None:
        self.asked.append(port)
        return self.ports.get(port)


@pytest.fixture
def start_reader(events: Events, pin_path: Path) -> Iterator[StartReader]:
    started: list[Gat467Reader] = []

    def start(
        port: str | None,
        candidates: list[str] | None = None,
        *,
        usb: Callable[[str], UsbAttributes | None] | None = None,
        sink: Events | None = None,
        **changes: object,
    ) -> Gat467Reader:
        settings = dataclasses.replace(
            FAST,
            port=port,
            pin_path=pin_path,
            **changes,  # type: ignore[arg-type]
        )
        reader = Gat467Reader(NAME, settings, candidates=(lambda: candidates or []), usb_lookup=usb)
        reader.start(sink or events)
        started.append(reader)
        return reader

    yield start
    for reader in started:
        reader.stop()


def pinned(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text("utf-8"))
    assert isinstance(value, dict)
    return value


def expected_identity() -> object:
    return dataclasses.replace(PERSON, photo=PHOTO, photo_format="wlt", source=NAME)


# -- finding and pinning -----------------------------------------------------------------------


def test_the_first_reader_found_is_pinned_privately(
    make_gat467_sim: MakeSimulator, events: Events, start_reader: StartReader, pin_path: Path
) -> None:
    mute = make_gat467_sim(answer=False)
    reader = make_gat467_sim()
    start_reader(None, [mute.path, reader.path])
    assert events.wait_for(EventKind.READER_ADDED).detail == reader.path
    value = pinned(pin_path)
    assert value == {"version": 1, "port": reader.path, "usb": None, "sam_id": None}
    assert stat.S_IMODE(pin_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in pin_path.parent.iterdir()) == ["reader-pin.json"]  # no temp


def test_the_next_start_uses_the_pinned_port_only(
    make_gat467_sim: MakeSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    pinned_reader = make_gat467_sim()
    first = Events()
    reader = start_reader(None, [pinned_reader.path], sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()

    # Another reader on a port listed first: without the pin it would be the one chosen.
    other = make_gat467_sim()
    other.present()
    pinned_reader.present()
    events = Events()
    start_reader(None, [other.path, pinned_reader.path], sink=events)
    assert events.wait_for(EventKind.READER_ADDED).detail == pinned_reader.path
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert other.counts[SAM_STATUS] == 0  # not even probed
    assert pinned(pin_path)["port"] == pinned_reader.path


def test_a_reader_moved_to_another_port_is_refused_until_the_pin_is_forgotten(
    make_gat467_sim: MakeSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    original = make_gat467_sim()
    first = Events()
    reader = start_reader(None, [original.path], sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()

    original.unplug()
    moved = make_gat467_sim()  # a reader now answers on another port, a card on it
    moved.present()
    events = Events()
    reader = start_reader(None, [original.path, moved.path], sink=events)
    refusal = events.wait_for(EventKind.ERROR)
    assert refusal.error is ReaderError.READER_MISMATCH
    assert moved.path in refusal.detail and original.path in refusal.detail
    assert moved.wait_for(SAM_STATUS, 3)  # looked again twice: still refused, said once
    assert events.kinds() == ["error:reader_mismatch"]
    assert moved.counts[FIND_CARD] == 0 and moved.counts[READ_BASE] == 0
    assert pinned(pin_path)["port"] == original.path
    reader.stop()

    assert forget_pin(pin_path) is True
    assert not pin_path.exists()
    assert forget_pin(pin_path) is False
    events = Events()
    start_reader(None, [original.path, moved.path], sink=events)
    assert events.wait_for(EventKind.READER_ADDED).detail == moved.path
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert pinned(pin_path)["port"] == moved.path


def test_the_pinned_reader_unplugged_and_back_is_trusted_again(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(None, [gat467_sim.path])
    events.wait_for(EventKind.READER_ADDED)
    assert gat467_sim.wait_for(FIND_CARD, 2)
    gat467_sim.unplug()
    events.wait_for(EventKind.READER_REMOVED)
    since = events.mark()
    gat467_sim.replug()
    gat467_sim.present()
    events.wait_for(EventKind.IDENTITY, since=since)
    assert events.kinds() == [
        "reader_added",
        "reader_removed",
        "reader_added",
        "card_present",
        "identity",
    ]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00",
        b"[]",
        b'{"version": 2, "port": "/dev/ttyUSB0", "usb": null, "sam_id": null}',
        b'{"version": 1, "port": "", "usb": null, "sam_id": null}',
        b'{"version": 1, "port": "/dev/ttyUSB0", "usb": null}',
        b'{"version": 1, "port": "/dev/ttyUSB0", "usb": {"vid": "1a86", "pid": 1,'
        b' "serial_number": null, "location": null}, "sam_id": null}',
        b'{"version": 1, "port": "/dev/ttyUSB0", "usb": {"vid": true, "pid": 1,'
        b' "serial_number": null, "location": null}, "sam_id": null}',
        b" " * (serial_pin.MAX_PIN_BYTES + 1),
    ],
    ids=[
        "garbage", "empty", "not-utf8", "a-list", "version", "no-port", "missing-field",
        "vid-text", "vid-bool", "huge",
    ],
)  # fmt: skip
def test_a_damaged_pin_is_reported_and_never_silently_replaced(
    make_gat467_sim: MakeSimulator,
    events: Events,
    start_reader: StartReader,
    pin_path: Path,
    content: bytes,
) -> None:
    reader = make_gat467_sim()
    pin_path.write_bytes(content)
    with pytest.raises(PinDamaged):
        PinStore(pin_path).load()
    start_reader(None, [reader.path])
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_PIN_DAMAGED
    events.expect_none(EventKind.READER_ADDED, since=0, within=0.5)  # two more tries
    assert events.kinds() == ["error:reader_pin_damaged"]
    assert reader.counts[SAM_STATUS] == 0  # nothing was probed
    assert pin_path.read_bytes() == content


# -- USB attributes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(READER_USB, vid=0x0483),
        dataclasses.replace(READER_USB, pid=0x5740),
        dataclasses.replace(READER_USB, serial_number="FAKE01"),
        dataclasses.replace(READER_USB, serial_number=None),
        dataclasses.replace(READER_USB, location="1-1.4:1.0"),
        None,
    ],
    ids=["vid", "pid", "serial", "no-serial", "location", "none"],
)
@pytest.mark.parametrize("configured", [False, True], ids=["probed", "configured"])
def test_another_device_on_the_pinned_port_is_refused_before_a_byte_is_sent(
    gat467_sim: Gat467Simulator,
    start_reader: StartReader,
    pin_path: Path,
    changed: UsbAttributes | None,
    configured: bool,
) -> None:
    usb = FakeUsb()
    usb.ports[gat467_sim.path] = READER_USB
    port = gat467_sim.path if configured else None
    first = Events()
    reader = start_reader(port, [gat467_sim.path], usb=usb, sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()
    assert pinned(pin_path)["usb"] == {
        "vid": 0x1A86, "pid": 0x7523, "serial_number": "RD0042", "location": "1-1.2:1.0"
    }  # fmt: skip

    if changed is None:
        del usb.ports[gat467_sim.path]
    else:
        usb.ports[gat467_sim.path] = changed
    gat467_sim.present()
    asked = gat467_sim.counts[SAM_STATUS]
    events = Events()
    start_reader(port, [gat467_sim.path], usb=usb, sink=events)
    refusal = events.wait_for(EventKind.ERROR)
    assert refusal.error is ReaderError.READER_MISMATCH, refusal.detail
    assert "USB attributes" in refusal.detail
    events.expect_none(EventKind.READER_ADDED, since=0, within=0.5)
    assert events.kinds() == ["error:reader_mismatch"]
    assert gat467_sim.counts[SAM_STATUS] == asked  # refused before anything was written to it
    assert gat467_sim.counts[READ_BASE] == 0


def test_the_same_usb_reader_is_trusted_and_a_configured_port_is_checked_too(
    gat467_sim: Gat467Simulator, start_reader: StartReader, pin_path: Path
) -> None:
    usb = FakeUsb()
    usb.ports[gat467_sim.path] = READER_USB
    first = Events()
    reader = start_reader(gat467_sim.path, usb=usb, sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()
    assert pinned(pin_path)["port"] == gat467_sim.path
    gat467_sim.present()
    events = Events()
    start_reader(gat467_sim.path, usb=usb, sink=events)
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert usb.asked == [gat467_sim.path, gat467_sim.path]


def test_port_listing_attributes_are_matched_by_path_and_link() -> None:
    @dataclasses.dataclass
    class Listed:
        device: str
        vid: int | None = None
        pid: int | None = None
        serial_number: str | None = None
        location: str | None = None

    listing = [
        Listed("/dev/ttyS0"),
        Listed("/dev/ttyUSB0", 0x1A86, 0x7523, "", "1-1.2:1.0"),
        Listed("/dev/ttyACM0", 0x0483, 0x5740, "ABC", "1-1.3:1.0"),
    ]
    assert attributes_among("/dev/ttyUSB0", listing) == UsbAttributes(
        0x1A86, 0x7523, None, "1-1.2:1.0"
    )
    assert attributes_among("/dev/ttyACM0", listing) == UsbAttributes(
        0x0483, 0x5740, "ABC", "1-1.3:1.0"
    )
    assert attributes_among("/dev/ttyS0", listing) is None  # listed, but no USB device
    assert attributes_among("/dev/ttyUSB9", listing) is None


def test_port_listing_resolves_links(tmp_path: Path) -> None:
    node = tmp_path / "ttyUSB0"
    node.touch()
    by_id = tmp_path / "usb-reader-if00-port0"
    by_id.symlink_to(node)

    @dataclasses.dataclass
    class Listed:
        device: str
        vid: int | None = 0x1A86
        pid: int | None = 0x7523
        serial_number: str | None = None
        location: str | None = None

    found = attributes_among(str(by_id), [Listed(str(node))])
    assert found is not None and found.vid == 0x1A86


def test_a_pseudo_terminal_has_no_usb_attributes(gat467_sim: Gat467Simulator) -> None:
    assert usb_attributes(gat467_sim.path) is None


# -- the SAM id --------------------------------------------------------------------------------

SAM_A = bytes.fromhex("0500010040a21c3200000000d2029649")
SAM_B = bytes.fromhex("0500010040a21c3200000000d2029650")


def test_the_sam_id_is_pinned_and_another_sam_on_the_port_is_refused(
    make_sam_sim: MakeSamSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    sim = make_sam_sim(SAM_A)
    first = Events()
    reader = start_reader(None, [sim.path], sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()
    assert pinned(pin_path)["sam_id"] == SAM_A.hex()

    sim.sam_id = SAM_B
    sim.present()
    events = Events()
    start_reader(None, [sim.path], sink=events)
    refusal = events.wait_for(EventKind.ERROR)
    assert refusal.error is ReaderError.READER_MISMATCH
    assert SAM_B.hex() in refusal.detail
    assert sim.wait_for(SAM_ID, sim.counts[SAM_ID] + 2)  # asked again: still refused, said once
    assert events.kinds() == ["error:reader_mismatch"]
    assert events.count(EventKind.CARD_PRESENT) == 0 and sim.counts[READ_BASE] == 0
    assert pinned(pin_path)["sam_id"] == SAM_A.hex()

    since = events.mark()
    sim.sam_id = SAM_A  # the pinned reader's SAM again
    assert events.wait_for(EventKind.IDENTITY, since=since).identity == expected_identity()


def test_a_sam_that_recovers_is_checked_before_any_card_is_read(
    make_sam_sim: MakeSamSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    sim = make_sam_sim(SAM_A)
    first = Events()
    reader = start_reader(None, [sim.path], sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()

    # The SAM is faulty at start: its id cannot be asked, so the check waits for its recovery.
    sim.sam_ok = False
    sim.sam_id = SAM_B
    sim.present()
    events = Events()
    start_reader(None, [sim.path], sink=events)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.SAM_FAULT
    asked = sim.counts[SAM_ID]
    sim.sam_ok = True
    refusal = events.wait_for(EventKind.ERROR, error=ReaderError.READER_MISMATCH)
    assert SAM_B.hex() in refusal.detail
    assert sim.counts[SAM_ID] > asked
    assert events.kinds()[:4] == [
        "reader_added",
        "error:sam_fault",
        "reader_removed",
        "error:reader_mismatch",
    ]
    # The first reader's last poll may still be on the line: a card found would have said so.
    assert events.count(EventKind.CARD_PRESENT) == 0 and sim.counts[READ_BASE] == 0


def test_a_sam_id_given_for_the_first_time_is_recorded(
    make_sam_sim: MakeSamSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    sim = make_sam_sim(SAM_A, sam_ok=False)  # pinned while its SAM was faulty
    events = Events()
    start_reader(None, [sim.path], sink=events)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.SAM_FAULT
    assert pinned(pin_path)["sam_id"] is None
    sim.sam_ok = True
    sim.present()
    events.wait_for(EventKind.IDENTITY)
    assert pinned(pin_path)["sam_id"] == SAM_A.hex()


def test_a_reader_silent_about_its_sam_id_is_pinned_without_one(
    make_sam_sim: MakeSamSimulator, events: Events, start_reader: StartReader, pin_path: Path
) -> None:
    sim = make_sam_sim(None)
    sim.present()
    start_reader(None, [sim.path])
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert sim.counts[SAM_ID] == 1
    assert pinned(pin_path)["sam_id"] is None


def test_a_reader_that_stops_giving_its_pinned_sam_id_is_refused(
    make_sam_sim: MakeSamSimulator, start_reader: StartReader, pin_path: Path
) -> None:
    sim = make_sam_sim(SAM_A)
    first = Events()
    reader = start_reader(None, [sim.path], sink=first)
    first.wait_for(EventKind.READER_ADDED)
    reader.stop()
    sim.sam_id = None
    sim.present()
    events = Events()
    start_reader(None, [sim.path], sink=events)
    refusal = events.wait_for(EventKind.ERROR)
    assert refusal.error is ReaderError.READER_MISMATCH
    assert "not given" in refusal.detail
    assert sim.counts[READ_BASE] == 0


# -- the pin file ------------------------------------------------------------------------------


def test_the_pin_round_trips_and_is_written_0600_whatever_the_umask(pin_path: Path) -> None:
    store = PinStore(pin_path)
    assert store.load() is None
    pin = ReaderPin(port="/dev/ttyUSB0", usb=READER_USB, sam_id=SAM_A.hex())
    old = os.umask(0)
    try:
        store.save(pin)
    finally:
        os.umask(old)
    assert stat.S_IMODE(pin_path.stat().st_mode) == 0o600
    assert store.load() == pin
    assert store.forget() is True
    assert store.load() is None


def test_a_failed_write_leaves_the_old_pin_and_no_litter(
    pin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PinStore(pin_path)
    old = ReaderPin(port="/dev/ttyUSB0")
    store.save(old)

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        store.save(ReaderPin(port="/dev/ttyUSB1"))
    monkeypatch.undo()
    assert store.load() == old
    assert sorted(p.name for p in pin_path.parent.iterdir()) == ["reader-pin.json"]


def test_a_damaged_pin_can_be_forgotten(pin_path: Path) -> None:
    pin_path.write_bytes(b"\x00garbage")
    assert forget_pin(pin_path) is True
    assert PinStore(pin_path).load() is None


def test_without_a_pin_file_nothing_is_pinned(
    gat467_sim: Gat467Simulator, events: Events, tmp_path: Path
) -> None:
    usb = FakeUsb()
    reader = Gat467Reader(NAME, dataclasses.replace(FAST, port=gat467_sim.path), usb_lookup=usb)
    reader.start(events)
    try:
        events.wait_for(EventKind.READER_ADDED)
        assert gat467_sim.wait_for(FIND_CARD, 2)
    finally:
        reader.stop()
    assert usb.asked == []
    assert gat467_sim.counts[SAM_ID] == 0
