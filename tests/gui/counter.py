"""Walking a counter or service point terminal as staff do: the card, the service, every answer
typed on the one-page form with Enter between them, the citizen's signature, submitted.

Keys go to the widget that has the focus, so a form whose focus order is wrong fails here; each
key and click is counted (benchmarks/counter_keys.py reports the count)."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QComboBox, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from devices.identity import Identity
from kiosk.session import Step
from kiosk.submissions import SubmissionResult
from tests.gui.test_visit import ADDRESS, PHONE, ime_commit, present_card, wait_step
from ui.app import Terminal
from ui.counter_form import CounterFormPage
from ui.signature_pad import SignaturePad


@dataclass
class Count:
    """Keys pressed and clicks made, and the strokes of a signature (not keys, not clicks)."""

    keys: int = 0
    clicks: int = 0
    strokes: int = 0
    log: list[str] = field(default_factory=list)

    def key(self, qtbot: QtBot, key: Qt.Key, modifier: Qt.KeyboardModifier | None = None) -> None:
        target = QApplication.focusWidget()
        assert target is not None, "no widget has the focus"
        if modifier is None:
            qtbot.keyClick(target, key)
        else:
            qtbot.keyClick(target, key, modifier)
        self.keys += 1
        self.log.append(f"key {key.name}")

    def type(self, qtbot: QtBot, text: str) -> None:
        target = QApplication.focusWidget()
        assert target is not None, "no widget has the focus"
        qtbot.keyClicks(target, text)
        self.keys += len(text)
        self.log.append(f"type {text!r}")

    def commit(self, text: str) -> None:
        """Chinese through the input method: one key per character chosen (a pinyin syllable's
        letters are not counted: they depend on the input method, not on this form)."""
        target = QApplication.focusWidget()
        assert target is not None, "no widget has the focus"
        ime_commit(target, text)
        self.keys += len(text)
        self.log.append(f"commit {text!r}")

    def click(self, qtbot: QtBot, widget: QWidget) -> None:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
        self.clicks += 1
        self.log.append(f"click {widget.objectName() or type(widget).__name__}")


def focused(terminal: Terminal) -> QWidget | None:
    del terminal
    return QApplication.focusWidget()


def form_page(terminal: Terminal) -> CounterFormPage:
    page = terminal.visit.counter_form
    assert page is not None, "not a counter or service point terminal"
    return page


def open_counter_form(
    qtbot: QtBot, terminal: Terminal, count: Count | None = None, index: int = 0
) -> CounterFormPage:
    """The card is read, staff choose the service: the whole form is up, focus on its first
    answer."""
    count = count or Count()
    present_card(qtbot, terminal)
    count.click(qtbot, terminal.visit.services.service_buttons[index])
    wait_step(qtbot, terminal, Step.FORM)
    page = form_page(terminal)
    qtbot.waitUntil(lambda: bool(page.editors), timeout=5000)
    return page


def type_residence_permit(qtbot: QtBot, terminal: Terminal, count: Count) -> None:
    """Every answer by keys alone, Enter moving on: phone, address, reason, date, collection."""
    page = form_page(terminal)
    window = terminal.window
    qtbot.waitUntil(lambda: window.focusWidget() is page.editors["phone"].widget, timeout=5000)
    count.type(qtbot, PHONE)
    count.key(qtbot, Qt.Key.Key_Return)
    assert window.focusWidget() is page.editors["address"].widget
    line = page.editors["address"].widget
    assert isinstance(line, QLineEdit)
    line.selectAll()  # the card's address is there: typing replaces it
    count.commit(ADDRESS)
    count.key(qtbot, Qt.Key.Key_Return)
    reason = page.editors["reason"].widget
    assert window.focusWidget() is reason and isinstance(reason, QComboBox)
    # A closed list takes a key to choose: Down to the first option ("work").
    count.key(qtbot, Qt.Key.Key_Down)
    assert reason.currentData() == "work"
    count.key(qtbot, Qt.Key.Key_Return)
    assert window.focusWidget() is page.editors["residence_start"].widget
    count.type(qtbot, "20250601")  # read as 2025-06-01
    count.key(qtbot, Qt.Key.Key_Return)
    collection = page.editors["collection"].widget
    assert window.focusWidget() is collection and isinstance(collection, QComboBox)
    count.key(qtbot, Qt.Key.Key_Down)
    assert collection.currentData() == "hall"
    count.key(qtbot, Qt.Key.Key_Return)
    assert window.focusWidget() is page.confirm_button


def ask_to_confirm(qtbot: QtBot, terminal: Terminal, count: Count) -> None:
    """Ctrl+Enter: the form is checked, then turned to the citizen."""
    count.key(qtbot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_step(qtbot, terminal, Step.CONFIRM)


def sign(qtbot: QtBot, pad: SignaturePad, count: Count) -> None:
    """A name written with the mouse: three strokes across the pad."""
    width, height = pad.width(), pad.height()
    for row in (0.3, 0.5, 0.7):
        y = int(height * row)
        start = QPoint(int(width * 0.15), y)
        qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=start)
        for step in range(1, 11):
            x = int(width * (0.15 + 0.06 * step))
            qtbot.mouseMove(pad, QPoint(x, y + (8 if step % 2 else -8)))
        qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(int(width * 0.75), y))
        count.strokes += 1
    assert pad.has_signature


def agent_card(terminal: Terminal, agent: Identity) -> None:
    terminal.visit.card_read(agent)


def confirm_and_submit(qtbot: QtBot, terminal: Terminal, count: Count) -> SubmissionResult:
    confirm = terminal.visit.confirm
    assert confirm is not None
    qtbot.waitUntil(confirm.signature.pad.isVisible, timeout=5000)
    sign(qtbot, confirm.signature.pad, count)
    visit = terminal.visit
    with qtbot.waitSignal(visit.submission_done, timeout=15000) as done:
        count.click(qtbot, confirm.submit_button)
    wait_step(qtbot, terminal, Step.DONE)
    result = done.args[0]
    assert isinstance(result, SubmissionResult)
    return result


def counter_submission(
    qtbot: QtBot, terminal: Terminal, count: Count | None = None
) -> SubmissionResult:
    """A whole residence-permit application at a counter or service point, the citizen
    present and signing."""
    count = count or Count()
    open_counter_form(qtbot, terminal, count)
    type_residence_permit(qtbot, terminal, count)
    ask_to_confirm(qtbot, terminal, count)
    return confirm_and_submit(qtbot, terminal, count)
