"""The GA/T 467 backend end to end: pyserial on a real pty, the reader simulator behind it."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.readers.base import EventKind, ReaderError
from devices.readers.gat467 import (
    FIND_CARD,
    LINE_RATE_BYTES_PER_S,
    READ_BASE,
    SAM_STATUS,
    Gat467Reader,
    SerialSettings,
    detect_port,
)
from tests.devices.conftest import Events
from tests.fixtures.gat467_sim import (
    GARBAGE,
    PERSON,
    PHOTO,
    Fault,
    Gat467Simulator,
    MakeSimulator,
)

pytestmark = pytest.mark.real_device

NAME = "counter reader"
FAST = SerialSettings(read_timeout_s=0.6, reconnect_interval_s=0.2, detect_interval_s=0.2)
StartReader = Callable[..., Gat467Reader]


@pytest.fixture
def start_reader(events: Events) -> Iterator[StartReader]:
    started: list[Gat467Reader] = []

    def start(
        port: str | None, candidates: list[str] | None = None, **changes: object
    ) -> Gat467Reader:
        settings = dataclasses.replace(FAST, port=port, **changes)  # type: ignore[arg-type]
        reader = Gat467Reader(NAME, settings, candidates=(lambda: candidates or []))
        reader.start(events)
        started.append(reader)
        return reader

    yield start
    for reader in started:
        reader.stop()


def expected_identity() -> object:
    return dataclasses.replace(PERSON, photo=PHOTO, photo_format="wlt", source=NAME)


def test_a_card_gives_one_identity_however_long_it_stays(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path)
    assert events.wait_for(EventKind.READER_ADDED).detail == gat467_sim.path
    gat467_sim.present()
    events.wait_for(EventKind.CARD_PRESENT)
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    # The card stays through twenty more polls: no second read, no second event.
    polls = gat467_sim.counts[FIND_CARD]
    assert gat467_sim.wait_for(FIND_CARD, polls + 20)
    assert gat467_sim.counts[READ_BASE] == 1
    assert events.count(EventKind.IDENTITY) == 1
    assert events.count(EventKind.CARD_PRESENT) == 1
    gat467_sim.remove()
    events.wait_for(EventKind.CARD_REMOVED)
    since = events.mark()
    gat467_sim.present()
    events.wait_for(EventKind.IDENTITY, since=since)
    assert events.kinds() == [
        "reader_added",
        "card_present",
        "identity",
        "card_removed",
        "card_present",
        "identity",
    ]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.BAD_CHECK, ReaderError.BAD_DATA),
        (Fault.TRUNCATED, ReaderError.TIMEOUT),
        (Fault.WRONG_LENGTH, ReaderError.BAD_DATA),
        (Fault.SHORT_CONTENT, ReaderError.BAD_DATA),
        (Fault.SILENT, ReaderError.TIMEOUT),
        (Fault.READ_FAILED, ReaderError.CARD_MOVED),
        (Fault.BAD_CARD_DATA, ReaderError.BAD_DATA),
    ],
)
def test_a_spoiled_read_is_reported_then_retried(
    gat467_sim: Gat467Simulator,
    events: Events,
    start_reader: StartReader,
    fault: Fault,
    error: ReaderError,
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fail_next_read(fault)
    gat467_sim.present()
    started = time.monotonic()
    failure = events.wait_for(EventKind.ERROR)
    assert failure.error is error, failure.detail
    assert failure.reader == NAME
    assert time.monotonic() - started < 2.0  # bounded: the read timeout is 0.6 s
    # The card is still there: the next attempt reads it.
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert events.kinds() == ["reader_added", "card_present", f"error:{error.value}", "identity"]


@pytest.mark.parametrize("fault", [Fault.GARBAGE, Fault.TRICKLE])
def test_garbage_and_a_slow_trickle_still_read(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader, fault: Fault
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fail_next_read(fault)
    gat467_sim.present()
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()
    assert events.kinds() == ["reader_added", "card_present", "identity"]


def test_a_trickle_slower_than_the_inter_byte_timeout_is_cut_short(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path, inter_byte_timeout_s=0.002, read_timeout_s=2.0)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fail_next_read(Fault.TRICKLE)
    gat467_sim.present()
    assert events.wait_for(EventKind.ERROR).error is ReaderError.TIMEOUT


def test_a_card_pulled_mid_read(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fail_next_read(Fault.PULL_MID_READ)
    gat467_sim.present()
    assert events.wait_for(EventKind.ERROR).error is ReaderError.CARD_MOVED
    events.wait_for(EventKind.CARD_REMOVED)
    assert events.kinds() == ["reader_added", "card_present", "error:card_moved", "card_removed"]


def test_no_card_means_quiet_polling(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    assert gat467_sim.wait_for(FIND_CARD, 10)
    assert events.kinds() == ["reader_added"]
    assert gat467_sim.counts[READ_BASE] == 0


def test_a_sam_fault_is_reported_once_and_nothing_is_read_until_it_recovers(
    make_gat467_sim: MakeSimulator, events: Events, start_reader: StartReader
) -> None:
    sim = make_gat467_sim(sam_ok=False)
    sim.present()
    start_reader(sim.path)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.SAM_FAULT
    assert sim.wait_for(SAM_STATUS, 3)  # asked again, not reported again
    assert events.kinds() == ["reader_added", "error:sam_fault"]
    assert sim.counts[FIND_CARD] == 0
    sim.sam_ok = True
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()


def test_the_reader_unplugged_mid_read_and_plugged_back(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fail_next_read(Fault.UNPLUG_MID_READ)
    gat467_sim.present()
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_GONE
    events.wait_for(EventKind.READER_REMOVED)
    since = events.mark()
    gat467_sim.replug()
    events.wait_for(EventKind.READER_ADDED, since=since)
    events.wait_for(EventKind.IDENTITY, since=since)
    assert events.kinds() == [
        "reader_added",
        "card_present",
        "error:reader_gone",
        "reader_removed",
        "reader_added",
        "card_present",
        "identity",
    ]


def test_the_reader_unplugged_while_idle(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    start_reader(gat467_sim.path)
    events.wait_for(EventKind.READER_ADDED)
    assert gat467_sim.wait_for(FIND_CARD, 2)
    gat467_sim.unplug()
    events.wait_for(EventKind.READER_REMOVED)
    assert events.kinds() == ["reader_added", "reader_removed"]


def test_a_missing_port_is_reported_once_until_it_appears(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    gat467_sim.unplug()
    start_reader(gat467_sim.path, reconnect_interval_s=0.05)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_GONE
    events.expect_none(EventKind.ERROR, since=1, within=0.3)  # six more tries, no more noise
    gat467_sim.replug()
    events.wait_for(EventKind.READER_ADDED)
    assert events.kinds() == ["error:reader_gone", "reader_added"]


def test_a_device_that_never_answers_is_not_a_reader(
    make_gat467_sim: MakeSimulator, events: Events, start_reader: StartReader
) -> None:
    mute = make_gat467_sim(answer=False)
    start_reader(mute.path)
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_GONE
    assert mute.wait_for(SAM_STATUS, 2)  # tried again
    assert events.kinds() == ["error:reader_gone"]


def test_stop_is_prompt_even_mid_read(
    gat467_sim: Gat467Simulator, events: Events, start_reader: StartReader
) -> None:
    reader = start_reader(gat467_sim.path, read_timeout_s=30.0)
    events.wait_for(EventKind.READER_ADDED)
    gat467_sim.fault = Fault.SILENT
    gat467_sim.present()
    assert gat467_sim.wait_for(READ_BASE, 1)
    started = time.monotonic()
    reader.stop(timeout=2.0)
    assert time.monotonic() - started < 0.5
    assert not any(t.name == f"reader:{NAME}" for t in threading.enumerate())


def test_start_returns_at_once_even_when_no_reader_answers(
    make_gat467_sim: MakeSimulator, events: Events, start_reader: StartReader
) -> None:
    mute = make_gat467_sim(answer=False)
    started = time.monotonic()
    start_reader(None, [mute.path])
    assert time.monotonic() - started < 0.05
    assert events.wait_for(EventKind.ERROR).error is ReaderError.READER_GONE


def test_auto_detection_finds_the_reader_among_other_ports(
    make_gat467_sim: MakeSimulator, tmp_path: Path, events: Events, start_reader: StartReader
) -> None:
    mute = make_gat467_sim(answer=False)
    babbler = make_gat467_sim()
    babbler.babble = GARBAGE
    printer = make_gat467_sim()  # answers, but is excluded as another device's port
    reader = make_gat467_sim()
    candidates = [str(tmp_path / "ttyGONE"), mute.path, babbler.path, printer.path, reader.path]
    started = time.monotonic()
    found = detect_port(candidates, probe_timeout_s=0.3, deadline_s=2.0, exclude=[printer.path])
    assert found == reader.path
    assert time.monotonic() - started < 1.0  # probes run side by side
    assert mute.counts[SAM_STATUS] == 1 and babbler.counts[SAM_STATUS] == 1
    assert printer.counts[SAM_STATUS] == 0

    reader.present()
    start_reader(None, candidates, exclude_ports=(printer.path,))
    assert events.wait_for(EventKind.READER_ADDED).detail == reader.path
    assert events.wait_for(EventKind.IDENTITY).identity == expected_identity()


def test_auto_detection_gives_up_within_its_deadline(make_gat467_sim: MakeSimulator) -> None:
    mute = make_gat467_sim(answer=False)
    started = time.monotonic()
    assert detect_port([mute.path], probe_timeout_s=5.0, deadline_s=0.3) is None
    assert time.monotonic() - started < 0.6


def test_line_rate_pacing_takes_the_wire_time(
    make_gat467_sim: MakeSimulator, events: Events, start_reader: StartReader
) -> None:
    sim = make_gat467_sim(line_rate=True)
    start_reader(sim.path)
    events.wait_for(EventKind.READER_ADDED)
    sim.present()
    present = events.wait_for(EventKind.CARD_PRESENT)
    identity = events.wait_for(EventKind.IDENTITY)
    wire_s = (15 + 19 + 1295) / LINE_RATE_BYTES_PER_S  # select reply, read reply, at least
    elapsed = events.time_of(identity) - events.time_of(present)
    assert elapsed >= 1295 / LINE_RATE_BYTES_PER_S
    assert elapsed < wire_s + 0.1
