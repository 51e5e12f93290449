"""The stall guard catches a slot that holds the event loop, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.fixtures.stalls import STALL_LIMIT_S, StallGuard, StallRecorder

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.allow_stall(reason="these tests stall the loop to see the guard fire")


def spin(seconds: float) -> None:
    """Keeps the thread busy, as a slot doing real work would (a sleep would free the CPU)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def guard(qapp: QApplication) -> Iterator[StallGuard]:
    made = StallGuard(qapp)
    yield made
    made.close()


def _run_slot(qtbot: QtBot, seconds: float, delay_ms: int = 0) -> None:
    done: list[bool] = []

    def slot() -> None:
        spin(seconds)
        done.append(True)

    QTimer.singleShot(delay_ms, slot)
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    qtbot.wait(20)  # the pass that ran the slot ends; its span is closed


def test_a_slot_busy_for_300_ms_is_reported_as_a_stall(qtbot: QtBot, guard: StallGuard) -> None:
    _run_slot(qtbot, 0.3)
    guard.close()
    recorder = guard.recorder
    assert len(recorder.stalls) == 1, recorder.stalls
    assert 0.3 <= recorder.stalls[0] < 5.0
    assert recorder.worst_s == recorder.stalls[0]
    assert "1 time(s)" in recorder.describe()


def test_a_timer_slot_busy_for_300_ms_is_reported_too(qtbot: QtBot, guard: StallGuard) -> None:
    _run_slot(qtbot, 0.3, delay_ms=30)
    guard.close()
    if not guard.recorder.glib:
        # Qt's Unix dispatcher fires timers where the guard cannot tell them from test code.
        assert guard.recorder.stalls == []
        return
    assert len(guard.recorder.stalls) == 1, guard.recorder.stalls
    assert guard.recorder.stalls[0] >= 0.3


def test_a_slot_busy_for_5_ms_is_measured_but_not_a_stall(qtbot: QtBot, guard: StallGuard) -> None:
    _run_slot(qtbot, 0.005)
    guard.close()
    recorder = guard.recorder
    assert recorder.stalls == []
    # The slot's pass was measured: the guard is not simply blind.
    assert 0.005 <= recorder.worst_s < STALL_LIMIT_S


def test_time_spent_by_the_test_outside_the_loop_is_not_counted(
    qtbot: QtBot, qapp: QApplication, guard: StallGuard
) -> None:
    qtbot.wait(20)
    spin(0.3)  # the test's own work between two waits
    qapp.processEvents()
    spin(0.3)
    qtbot.wait(20)
    guard.close()
    assert guard.recorder.stalls == []
    assert guard.recorder.worst_s < STALL_LIMIT_S


def test_a_slot_that_waits_in_a_nested_loop_is_charged_for_its_work_before_it(
    qtbot: QtBot, guard: StallGuard
) -> None:
    done: list[bool] = []

    def slot() -> None:
        spin(0.3)
        qtbot.wait(10)  # a nested event loop, as a modal dialog would run
        done.append(True)

    QTimer.singleShot(0, slot)
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    guard.close()
    if not guard.recorder.glib:
        # Qt's Unix dispatcher: the nested loop's awake cannot be told from the test's own
        # processEvents() followed by test code, so the pass is dropped rather than guessed at.
        assert guard.recorder.stalls == []
        return
    assert len(guard.recorder.stalls) == 1
    assert guard.recorder.stalls[0] >= 0.3


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_glib_passes_count_from_the_first_event_after_the_wait_to_awake() -> None:
    clock = FakeClock()
    recorder = StallRecorder(glib=True, clock=clock)
    recorder.about_to_block()
    clock.now = 5.0  # waiting for input is not a stall
    recorder.event_delivered()
    clock.now = 5.25
    recorder.event_delivered()
    clock.now = 5.3
    recorder.awake()
    clock.now = 9.0  # the test's own code after the loop has returned
    recorder.event_delivered()
    clock.now = 12.0
    recorder.about_to_block()
    recorder.awake()  # a pass with nothing to do
    assert recorder.stalls == [pytest.approx(0.3)]
    assert recorder.passes == 1


def test_unix_passes_count_from_awake_to_about_to_block_only() -> None:
    clock = FakeClock()
    recorder = StallRecorder(glib=False, clock=clock)
    recorder.awake()
    clock.now = 0.25
    recorder.about_to_block()
    clock.now = 3.0  # waiting, then timers, then possibly the test's own code
    recorder.awake()
    clock.now = 3.1
    recorder.awake()  # the earlier pass never waited: not counted
    clock.now = 3.15
    recorder.about_to_block()
    assert recorder.stalls == [pytest.approx(0.25)]
    assert recorder.passes == 2
    assert recorder.worst_s == pytest.approx(0.25)


def test_the_fixture_fails_a_stalling_test_unless_it_is_marked(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        textwrap.dedent(
            """\
            [pytest]
            qt_api = pyside6
            markers =
                allow_stall(reason): this test stalls the event loop on purpose
            """
        )
    )
    (tmp_path / "test_stalling.py").write_text(
        textwrap.dedent(
            """\
            import time

            import pytest
            from PySide6.QtCore import QTimer


            def _stall(qtbot):
                done = []

                def slot():
                    end = time.perf_counter() + 0.3
                    while time.perf_counter() < end:
                        pass
                    done.append(True)

                QTimer.singleShot(0, slot)
                qtbot.waitUntil(lambda: bool(done), timeout=5000)
                qtbot.wait(20)


            def test_stalls(qtbot, stall_guard):
                _stall(qtbot)


            @pytest.mark.allow_stall(reason="shows the marker")
            def test_stalls_on_purpose(qtbot, stall_guard):
                _stall(qtbot)


            def test_quick(qtbot, stall_guard):
                qtbot.wait(20)
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTEST_ADDOPTS": "",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.fixtures.stalls",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(tmp_path / "pytest.ini"),
            str(tmp_path / "test_stalling.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    # Every call passes; the unmarked stalling test then errors at teardown, and only it.
    assert "3 passed, 1 error" in out, out
    errors = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, out
    assert errors[0].startswith("ERROR test_stalling.py::test_stalls - "), out
    assert "the event loop stalled 1 time(s)" in out, out
