"""The end of a visit: complete wipes, and a visit asked to end while it is being saved."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from kiosk.session import EndReason, Step
from tests.fixtures.badpeer import BadPeer
from tests.gui.conftest import MakeTerminal, visible_texts
from tests.gui.test_visit import (
    ADDRESS,
    PERSON_NAME,
    PHONE,
    answer_residence_permit,
    checked,
    ime_commit,
    open_form,
    type_digits,
    wait_step,
)


def test_the_wipe_leaves_no_undo_history_and_no_choice_selected(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    page = visit.question
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    page.line.setFocus()
    ime_commit(page.line, ADDRESS)
    qtbot.keyClick(page.line, Qt.Key.Key_Return)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "reason"
    choice = page.choices.button_for("work")
    assert choice is not None
    qtbot.mouseClick(choice, Qt.MouseButton.LeftButton)
    QGuiApplication.clipboard().setText(PHONE)  # staff or the citizen copied something
    # Back to the address page: the typed address is on screen again, with its undo history.
    qtbot.mouseClick(page.back_button, Qt.MouseButton.LeftButton)
    assert page.line.text() == ADDRESS
    page.line.selectAll()
    page.line.del_()
    page.line.insert("朝阳门内大街")  # an edit in progress when the visit ends

    reader = terminal.parts.demo_reader
    assert reader is not None
    reader.remove()  # the kiosk citizen walks away with the card: the visit ends and is wiped
    wait_step(qtbot, terminal, Step.WELCOME)
    for _ in range(5):
        page.line.undo()
    assert page.line.text() == ""
    assert not page.line.isUndoAvailable() and not page.line.isRedoAvailable()
    assert page.choices.buttons() == []
    assert page.value() is None
    assert QGuiApplication.clipboard().text() == ""
    shown = " ".join(visible_texts(terminal.window))
    for value in (PHONE, ADDRESS, PERSON_NAME, "朝阳门内大街"):
        assert value not in shown
    assert not any(PHONE in said or ADDRESS in said for said in terminal.window.voice.spoken)


def test_a_card_taken_while_saving_waits_for_the_outcome_then_wipes(
    qtbot: QtBot, make_terminal: MakeTerminal, bad_peer: BadPeer
) -> None:
    bad_peer.mode = "stall"  # the platform takes the upload and does not answer: a slow network
    terminal = make_terminal(platform_url=bad_peer.base_url, done_reset_s=1)
    visit = terminal.visit
    reader = terminal.parts.demo_reader
    assert reader is not None
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.SUBMITTING)
    qtbot.waitUntil(lambda: bad_peer.posts() >= 1, timeout=5000)

    reader.remove()  # the citizen takes the card while "Saving…" is on the screen
    qtbot.waitUntil(lambda: visit.session.held_end is EndReason.CARD_REMOVED, timeout=2000)
    assert visit.session.step is Step.SUBMITTING  # the end is held
    assert terminal.window.current_page() is visit.busy

    wait_step(qtbot, terminal, Step.DONE, timeout=15000)
    outcome = visit.done.status.text()
    assert "已保存在本终端" in outcome
    assert visit.done.number.text()
    spoken = " ".join(terminal.window.voice.spoken)
    assert outcome in spoken and visit.done.number.text() in spoken
    assert "请取走您的身份证" not in visit.done.printed.text()  # the card is already gone

    qtbot.waitUntil(lambda: not visit.session.active, timeout=5000)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert "身份证已取走" in visit.welcome.message.text()
    counts = terminal.parts.outbox.counts()
    assert sum(counts.values()) == 1  # saved once, never reported as failed
    bad_peer.released.set()


def test_the_idle_warning_does_not_start_while_saving(
    qtbot: QtBot, make_terminal: MakeTerminal, bad_peer: BadPeer
) -> None:
    bad_peer.mode = "stall"
    terminal = make_terminal(platform_url=bad_peer.base_url, idle_timeout_s=0.3, done_reset_s=1)
    visit = terminal.visit
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.SUBMITTING)
    with qtbot.waitSignal(terminal.window.idle_timer.timeout, timeout=3000):
        pass  # the idle time passes while the upload waits
    assert not terminal.window.idle_banner.isVisible()
    assert visit.session.step is Step.SUBMITTING
    wait_step(qtbot, terminal, Step.DONE, timeout=15000)
    bad_peer.released.set()
