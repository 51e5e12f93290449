"""The vendor-SDK backend against a real shared library built here (sdt_fake.c), through ctypes."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.readers.base import EventKind, ReaderError
from devices.readers.resident_id import (
    bmp_from_bgr,
    decode_identity,
    decoded_photo,
    encode_text,
    load_wlt_decoder,
)
from devices.readers.sdt import SdtLibrary, SdtReader, SdtSettings
from tests.devices.conftest import Events, wait_until
from tests.fixtures.gat467_sim import PERSON, PHOTO

SOURCE = Path(__file__).with_name("sdt_fake.c")
NAME = "sdk reader"


@pytest.fixture(scope="session")
def sdt_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the vendor library stand-in (apt install gcc)"
    out = tmp_path_factory.mktemp("sdt") / "libsdtapi.so"
    subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(out),
            str(SOURCE),
        ],
        check=True,
        timeout=60,
    )
    return out


class FakeReader:
    """The stand-in library's state directory: what the 'reader' does, and who called it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.state: dict[str, str] = {"port": "1001", "card": "0", "sam": "90", "read": "ok"}
        (directory / "text.bin").write_bytes(encode_text(PERSON))
        (directory / "photo.bin").write_bytes(PHOTO)
        self.write()

    def set(self, **values: object) -> None:
        self.state.update({key: str(value) for key, value in values.items()})
        self.write()

    def write(self) -> None:
        text = "".join(f"{key}={value}\n" for key, value in self.state.items())
        staged = self.dir / "state.new"
        staged.write_text(text)
        staged.replace(self.dir / "state")  # the library never sees half a file

    def calls(self) -> list[tuple[str, int]]:
        log = self.dir / "calls.log"
        if not log.exists():
            return []
        return [
            (name, int(tid))
            for name, tid in (line.split() for line in log.read_text().splitlines())
        ]

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls() if call == name)

    def release(self) -> None:
        (self.dir / "release").touch()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReader]:
    monkeypatch.setenv("SDT_FAKE_DIR", str(tmp_path))
    reader = FakeReader(tmp_path)
    yield reader
    reader.release()  # a hanging call, if any, returns


StartReader = Callable[..., SdtReader]


@pytest.fixture
def start_reader(sdt_library: Path, events: Events, fake: FakeReader) -> Iterator[StartReader]:
    started: list[SdtReader] = []

    def start(**changes: object) -> SdtReader:
        settings = SdtSettings(
            library=sdt_library, port=1001, read_timeout_s=1.0, reconnect_interval_s=0.1
        )
        reader = SdtReader(dataclasses.replace(settings, **changes), NAME)  # type: ignore[arg-type]
        reader.start(events)
        started.append(reader)
        return reader

    yield start
    for reader in started:
        reader.stop()


def expected_identity() -> object:
    return dataclasses.replace(PERSON, photo=PHOTO, photo_format="wlt", source=NAME)


def test_the_library_binds_the_six_functions(sdt_library: Path, fake: FakeReader) -> None:
    library = SdtLibrary(sdt_library)
    assert library.open_port(1001) == 0x90
    assert library.open_port(1) == 0x01
    assert library.sam_status(1001) == 0x90
    assert library.find_card(1001) == 0x80
    fake.set(card=1)
    assert library.find_card(1001) == 0x9F
    assert library.select_card(1001) == 0x90
    code, text, photo = library.read_base(1001)
    assert (code, text, photo) == (0x90, encode_text(PERSON), PHOTO)
    assert library.close_port(1001) == 0x90


def test_a_card_gives_one_identity_and_all_calls_stay_on_one_thread(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    start_reader()
    assert events.wait_for(EventKind.READER_ADDED).detail == "port 1001"
    fake.set(card=1)
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    finds = fake.count("SDT_StartFindIDCard")
    assert wait_until(lambda: fake.count("SDT_StartFindIDCard") >= finds + 10)
    assert fake.count("SDT_ReadBaseMsg") == 1
    fake.set(card=0)
    events.wait_for(EventKind.CARD_REMOVED)
    assert events.kinds() == ["reader_added", "card_present", "identity", "card_removed"]
    threads = {tid for _, tid in fake.calls()}
    assert len(threads) == 1
    assert threading.get_native_id() not in threads


def test_the_port_is_found_among_usb_and_serial_ports(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    fake.set(port=3)
    start_reader(port=None)
    assert events.wait_for(EventKind.READER_ADDED).detail == "port 3"
    opened = [name for name, _ in fake.calls() if name == "SDT_OpenPort"]
    assert len(opened) == 16 + 3  # USB 1001–1016 first, then COM1–COM3


def test_no_card_means_quiet_polling(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    start_reader()
    events.wait_for(EventKind.READER_ADDED)
    assert wait_until(lambda: fake.count("SDT_StartFindIDCard") >= 10)
    assert events.kinds() == ["reader_added"]


def test_a_sam_fault(fake: FakeReader, events: Events, start_reader: StartReader) -> None:
    fake.set(sam="60", card=1)
    start_reader()
    assert events.wait_for(EventKind.ERROR).error is ReaderError.SAM_FAULT
    assert wait_until(lambda: fake.count("SDT_GetSAMStatus") >= 3)
    assert events.kinds() == ["reader_added", "error:sam_fault"]
    fake.set(sam="90")
    events.wait_for(EventKind.IDENTITY)


@pytest.mark.parametrize(
    ("read", "error"), [("fail", ReaderError.CARD_MOVED), ("short", ReaderError.BAD_DATA)]
)
def test_a_failed_read(
    fake: FakeReader, events: Events, start_reader: StartReader, read: str, error: ReaderError
) -> None:
    fake.set(card=1, read=read)
    start_reader()
    assert events.wait_for(EventKind.ERROR).error is error
    # A few tries while the card stays, then nothing until it is placed again.
    fake.set(read="ok", card=0)
    events.wait_for(EventKind.CARD_REMOVED)
    assert 1 <= events.count(EventKind.ERROR) <= 3
    fake.set(card=1)
    events.wait_for(EventKind.IDENTITY)


def test_bad_card_data_is_not_an_identity(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    person = dataclasses.replace(PERSON, id_number="110101195203080022")
    (fake.dir / "text.bin").write_bytes(encode_text(person))
    fake.set(card=1)
    start_reader(max_read_attempts=1)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.BAD_DATA
    assert events.count(EventKind.IDENTITY) == 0


def test_a_slow_read_within_its_bound(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    fake.set(card=1, read="slow", slow_ms=300)
    start_reader()
    present = events.wait_for(EventKind.CARD_PRESENT)
    identity = events.wait_for(EventKind.IDENTITY)
    assert events.time_of(identity) - events.time_of(present) >= 0.3
    assert events.kinds() == ["reader_added", "card_present", "identity"]


def test_a_hung_call_is_reported_and_does_not_hold_up_stop(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    fake.set(card=1, read="hang")
    reader = start_reader(read_timeout_s=0.3)
    present = events.wait_for(EventKind.CARD_PRESENT)
    timeout = events.wait_for(EventKind.ERROR)
    assert timeout.error is ReaderError.TIMEOUT
    assert "SDT_ReadBaseMsg" in timeout.detail
    assert 0.3 <= events.time_of(timeout) - events.time_of(present) < 0.8
    events.wait_for(EventKind.READER_REMOVED)

    started = time.monotonic()
    reader.stop(timeout=0.3)  # the device thread is still inside the library
    assert time.monotonic() - started < 0.5
    stuck = [t for t in threading.enumerate() if t.name == f"reader:{NAME}"]
    assert stuck, "the call was still hanging: its thread should still be there"
    fake.release()
    stuck[0].join(5)
    assert not stuck[0].is_alive()


def test_a_hung_call_that_returns_is_followed_by_a_fresh_start(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    fake.set(card=1, read="hang")
    start_reader(read_timeout_s=0.3)
    events.wait_for(EventKind.READER_REMOVED)
    fake.set(read="ok")
    since = events.mark()
    fake.release()
    events.wait_for(EventKind.READER_ADDED, since=since)
    events.wait_for(EventKind.IDENTITY, since=since)


def test_an_unplugged_reader_and_its_return(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    start_reader()
    events.wait_for(EventKind.READER_ADDED)
    fake.set(port=0)
    events.wait_for(EventKind.READER_REMOVED)
    since = events.mark()
    fake.set(port=1001, card=1)
    events.wait_for(EventKind.READER_ADDED, since=since)
    events.wait_for(EventKind.IDENTITY, since=since)
    assert events.count(EventKind.ERROR) == 0


def test_a_missing_library_is_reported(
    tmp_path: Path, events: Events, start_reader: StartReader
) -> None:
    start_reader(library=tmp_path / "libnothere.so")
    error = events.wait_for(EventKind.ERROR)
    assert error.error is ReaderError.READER_GONE
    assert "vendor library" in error.detail


def test_no_reader_on_any_port_is_reported_once(
    fake: FakeReader, events: Events, start_reader: StartReader
) -> None:
    fake.set(port=0)
    start_reader(port=None)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_GONE
    opens = fake.count("SDT_OpenPort")
    assert wait_until(lambda: fake.count("SDT_OpenPort") >= opens + 64)  # two more sweeps
    assert events.kinds() == ["error:reader_gone"]


def test_the_vendor_photo_decoder(sdt_library: Path) -> None:
    decode = load_wlt_decoder(sdt_library)
    identity = decode_identity(encode_text(PERSON), PHOTO, "r")
    image = decoded_photo(identity, decode)
    expected = bytes((PHOTO[i % 1024] ^ (i & 0xFF)) for i in range(102 * 126 * 3))
    assert image == bmp_from_bgr(expected)
    # The wrong vendor code: the library says no, the screen shows its placeholder.
    assert decoded_photo(identity, load_wlt_decoder(sdt_library, vendor_code=601)) is None
    with pytest.raises(AttributeError):
        load_wlt_decoder(sdt_library, function="no_such_function")
