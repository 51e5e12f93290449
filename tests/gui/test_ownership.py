"""Who owns the terminal's Qt objects: the shell, deleted on the GUI thread when the terminal
stops; background work holds none of them; the garbage collector never has to free one."""

from __future__ import annotations

import functools
import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from refplatform.server import RunningPlatform
from tests.fixtures.platform import enrol_terminal
from tests.gui.conftest import ROOT, MakeTerminal
from tests.gui.test_visit import answer_residence_permit, open_form, submit, wait_step
from ui.app import Terminal
from ui.background import Background, QtObjectInWorkError


def _text_of(widget: QLabel) -> str:
    return widget.text()


def test_background_refuses_work_that_holds_a_qt_object(qtbot: QtBot) -> None:
    owner = QObject()
    background = Background(owner)
    label = QLabel("x")
    try:
        for op in (
            functools.partial(_text_of, label),
            lambda: label.text(),  # noqa: PLW0108 - a closure over the widget is the case
            label.text,
            functools.partial(print, functools.partial(_text_of, label)),
        ):
            with pytest.raises(QtObjectInWorkError):
                background.run(op, print, print)
        assert not background.busy
    finally:
        background.shutdown()
        label.deleteLater()
        owner.deleteLater()


def test_background_callbacks_run_on_the_gui_thread_and_the_op_on_a_worker(qtbot: QtBot) -> None:
    owner = QObject()
    background = Background(owner)
    seen: dict[str, object] = {}

    def op(value: int) -> int:
        seen["op_thread"] = threading.current_thread()
        return value * 2

    def done(value: object) -> None:
        seen["callback_thread"] = threading.current_thread()
        seen["value"] = value

    try:
        background.run(functools.partial(op, 21), done, print)
        qtbot.waitUntil(lambda: "value" in seen, timeout=5000)
        assert seen["value"] == 42
        assert seen["callback_thread"] is threading.main_thread()
        assert seen["op_thread"] is not threading.main_thread()
        assert not background.busy
    finally:
        background.shutdown()
        owner.deleteLater()


def one_whole_visit(qtbot: QtBot, terminal: Terminal) -> None:
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    submit(qtbot, terminal)
    terminal.visit.done.finish_button.click()
    wait_step(qtbot, terminal, Step.WELCOME)


def test_a_stopped_terminal_leaves_nothing_qt_for_the_collector(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    one_whole_visit(qtbot, terminal)
    watched = [
        terminal.window,
        terminal.visit,
        terminal.card,
        terminal.background,
        terminal.voice,
        terminal.visit.question,
        terminal.visit.services,
        terminal.card.mrz,
    ]
    refs = [weakref.ref(obj) for obj in watched]
    del watched
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        terminal.stop()  # collects once on the GUI thread as it stops: nothing Qt may be found
        found = [type(o).__name__ for o in gc.garbage if isinstance(o, QObject)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert found == []
    terminal_ref = weakref.ref(terminal)
    del terminal
    # The test fixture still holds the terminal; its Qt objects are already deleted, and their
    # wrappers go with the last reference, without the collector.
    assert terminal_ref() is not None
    assert all(not _alive_qt(ref()) for ref in refs)


def _alive_qt(obj: QObject | None) -> bool:
    if obj is None:
        return False
    import shiboken6

    return bool(shiboken6.isValid(obj))


def test_many_visits_while_a_worker_collects_garbage_and_renders_receipts(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    terminals = 4
    for number in range(terminals):  # each terminal enrolled under an id of its own
        enrol_terminal(platform_server, tmp_path / f"terminal-{number}", f"K{number + 1:02d}")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "PYTHONFAULTHANDLER": "1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.gui.stress_visits",
            str(tmp_path),
            "--platform-url",
            platform_server.base_url,
            "--terminals",
            str(terminals),
            "--visits",
            "5",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "visits: 20" in done.stdout
    assert "Timers cannot be stopped from another thread" not in done.stderr
    collections = int(done.stdout.rsplit(" ", 1)[1])
    assert collections > 20  # the worker really collected while the visits ran


def test_every_widget_of_the_terminal_has_a_parent(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    """A widget without a parent is owned by Python alone: whatever drops its last reference,
    on whatever thread and at whatever time, deletes it."""
    from PySide6.QtWidgets import QApplication

    terminal = make_terminal()
    one_whole_visit(qtbot, terminal)
    strays = [
        type(w).__name__
        for w in QApplication.topLevelWidgets()
        if w is not terminal.window and shiboken6.isValid(w) and w.parent() is None
    ]
    assert strays == []


def _is_frozen(obj: object) -> bool:
    """gc.get_objects() lists what the collector walks; frozen objects are not among them."""
    return gc.is_tracked(obj) and not any(o is obj for o in gc.get_objects())


def test_the_terminal_built_behind_a_shown_window_sets_its_objects_aside_from_the_collector(
    qtbot: QtBot, tmp_path: Path, platform_server: RunningPlatform
) -> None:
    # The way the terminal starts for real (ui/start.py): the welcome page is painted first and
    # the terminal is built behind it, so its first frame is out before the collector exists.
    from kiosk.app import Parts, build_parts
    from kiosk.config import Config
    from tests.gui.conftest import CATALOGUE
    from ui.screens import WelcomePage
    from ui.shell import Shell
    from ui.start import Startup
    from ui.voice import VoiceGuide

    config = Config(data_dir=tmp_path / "data", platform_url=platform_server.base_url)
    enrol_terminal(platform_server, config.data_dir, config.terminal_id)
    shell = Shell(config=config, voice=VoiceGuide(enabled=False))
    welcome = WelcomePage(demo=True)
    shell.add_page(welcome)
    shell.show_page(welcome)
    startup = Startup(shell, welcome, Background(shell), check="", benchmark=False)
    shell.first_frame.connect(startup.first_frame)
    built: list[Parts] = []

    def build() -> Parts:
        parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
        built.append(parts)
        return parts

    # The terminal's collector collects the whole process once, inside an event-loop pass (here,
    # as for real, the terminal starts in a callback). A kiosk's process holds the terminal's
    # objects only; this one holds those of a thousand earlier tests, which are set aside first
    # so that pass is what a kiosk's is. stop() hands collection back with nothing frozen.
    gc.collect()
    gc.freeze()
    harness = gc.get_freeze_count()
    startup.begin(build)
    shell.resize(1280, 900)
    shell.show()
    try:
        qtbot.waitUntil(lambda: startup.parts is not None, timeout=20_000)
        qtbot.waitUntil(lambda: startup._pending == 0, timeout=20_000)
        terminal = startup.terminal
        assert terminal is not None
        assert gc.get_freeze_count() > harness
        assert _is_frozen(terminal.visit) and _is_frozen(terminal.visit.question)
        del terminal
    finally:
        startup.stop()
        for parts in built:
            parts.close()
    assert gc.get_freeze_count() == 0  # handed back as found when the terminal stopped
