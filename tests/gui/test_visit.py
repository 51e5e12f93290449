"""Whole visits through the real window, as a citizen at the kiosk would make them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
from pdfminer.high_level import extract_text
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from kiosk.submissions import SubmissionResult
from tests.gui.conftest import ROOT, MakeTerminal, closed_port_url, visible_texts
from ui.app import Terminal

PERSON_NAME = "张秀英"
PERSON_ID = "110101195203080021"
PHONE = "13912345678"
ADDRESS = "本市和平路12号3单元401室"


def wait_step(qtbot: QtBot, terminal: Terminal, step: Step, timeout: int = 5000) -> None:
    window, visit = terminal.window, terminal.visit
    qtbot.waitUntil(
        lambda: (
            visit.session.step is step and window.stack.currentWidget() is _page_for(terminal, step)
        ),
        timeout=timeout,
    )


def _page_for(terminal: Terminal, step: Step) -> object:
    visit = terminal.visit
    return {
        Step.WELCOME: visit.welcome,
        Step.SERVICES: visit.services,
        Step.GUIDE: visit.guide,
        Step.QUESTION: visit.question,
        Step.REVIEW: visit.review,
        Step.SUBMITTING: visit.busy,
        Step.DONE: visit.done,
        Step.FORM: visit.counter_form,
        Step.CONFIRM: visit.confirm,
    }[step]


def present_card(qtbot: QtBot, terminal: Terminal) -> None:
    visit = terminal.visit
    assert visit.welcome.demo_button is not None
    qtbot.mouseClick(visit.welcome.demo_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.SERVICES)


def open_form(qtbot: QtBot, terminal: Terminal, index: int = 0) -> None:
    visit = terminal.visit
    present_card(qtbot, terminal)
    qtbot.mouseClick(visit.services.service_buttons[index], Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.GUIDE)
    qtbot.mouseClick(visit.guide.start_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.QUESTION)


def checked(qtbot: QtBot, terminal: Terminal) -> None:
    """Wait until the answer just given has been checked (checks run on a worker)."""
    qtbot.waitUntil(lambda: not terminal.visit.checking, timeout=5000)


def type_digits(qtbot: QtBot, terminal: Terminal, digits: str) -> None:
    visit = terminal.visit
    keypad = visit.question.keypad
    assert keypad is not None
    for digit in digits:
        qtbot.mouseClick(keypad.buttons[digit], Qt.MouseButton.LeftButton)


def pick_date(qtbot: QtBot, terminal: Terminal, wanted: str) -> None:
    """Press the date picker's year, month and day buttons until it shows the date wanted."""
    picker = terminal.visit.question.date_picker
    assert picker.isVisible()
    year, month, day = (int(part) for part in wanted.split("-"))
    for index, (part, target) in enumerate((("year", year), ("month", month), ("day", day))):
        for _ in range(400):
            now = int(picker.value().split("-")[index])
            if now == target:
                break
            step = "+1" if now < target else "-1"
            qtbot.mouseClick(picker.buttons[f"{part}:{step}"], Qt.MouseButton.LeftButton)
    assert picker.value() == wanted


def answer_residence_permit(qtbot: QtBot, terminal: Terminal) -> None:
    visit = terminal.visit
    page = visit.question
    assert visit.session.current_question.field == "phone"
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "address"
    page.line.setFocus()
    ime_commit(page.line, ADDRESS)
    qtbot.keyClick(page.line, Qt.Key.Key_Return)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "reason"
    qtbot.mouseClick(page.choices.button_for("work"), Qt.MouseButton.LeftButton)  # type: ignore[arg-type]
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "residence_start"
    pick_date(qtbot, terminal, "2025-06-01")
    assert page.value() == "2025-06-01"
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "collection"
    qtbot.mouseClick(page.choices.button_for("hall"), Qt.MouseButton.LeftButton)  # type: ignore[arg-type]
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    wait_step(qtbot, terminal, Step.REVIEW)


def ime_commit(widget: QWidget, text: str) -> None:
    """Chinese text arrives as an input method's commit, as a pinyin keyboard sends it."""
    event = QInputMethodEvent()
    event.setCommitString(text)
    QApplication.sendEvent(widget, event)


def submit(qtbot: QtBot, terminal: Terminal) -> SubmissionResult:
    visit = terminal.visit
    with qtbot.waitSignal(visit.submission_done, timeout=15000) as done:
        qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.DONE)
    result = done.args[0]
    assert isinstance(result, SubmissionResult)
    return result


def personal_values() -> list[str]:
    return [PERSON_NAME, PERSON_ID, "张*英", "110101********0021", PHONE, ADDRESS]


def test_a_citizen_applies_and_takes_a_receipt(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    texts = " ".join(visible_texts(window))
    assert "张*英" in texts and "110101********0021" in texts
    assert PERSON_ID not in texts and PERSON_NAME not in texts  # masked on screen
    assert "第 1 项" in visit.question.progress.text()
    answer_residence_permit(qtbot, terminal)
    review = " ".join(visible_texts(visit.review))
    assert PHONE in review and "工作" in review and "110101********0021" in review
    result = submit(qtbot, terminal)
    assert result.delivered
    assert visit.done.number.text() == result.receipt_number
    assert result.receipt_path is not None and result.receipt_path.exists()
    # the platform has it, once, under its UUID
    answer = requests.get(
        f"{terminal.parts.config.platform_url}/api/v1/submissions/{result.submission_id}", timeout=5
    )
    assert answer.status_code == 200
    assert answer.json()["receipt_number"] == result.receipt_number
    receipt_text = extract_text(str(result.receipt_path))
    assert result.receipt_number in receipt_text and "居住证" in receipt_text
    # finishing wipes the screen
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    left = " ".join(visible_texts(window))
    for value in [*personal_values(), result.receipt_number]:
        assert value not in left
    assert not any(PERSON_NAME in s or "张*英" in s for s in window.voice.spoken)


def test_an_invalid_answer_is_explained_next_to_the_field(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "123")
    qtbot.mouseClick(visit.question.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "phone"  # did not move on
    assert visit.question.error.isVisible()
    assert "手机号码" in visit.question.error.text()
    assert visit.question.line.accessibleDescription() in visit.question.error.text()
    assert visit.question.line.property("invalid") is True
    assert "手机号码" in window.voice.spoken[-1]  # read aloud as well


def test_offline_the_submission_waits_and_the_receipt_says_so(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.5
    visit = terminal.visit
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert not result.delivered
    assert visit.done.notice_frame.isVisible()
    assert "网络" in visit.done.notice.text()
    assert terminal.parts.outbox.pending_count() == 1
    assert result.receipt_path is not None
    assert "网络" in extract_text(str(result.receipt_path))


def test_idle_warns_then_ends_the_visit_and_clears_the_screen(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(idle_timeout_s=0.2, idle_warning_s=1.0)
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "139")
    qtbot.waitUntil(window.idle_banner.isVisible, timeout=3000)
    assert "秒" in window.idle_text.text()
    wait_step(qtbot, terminal, Step.WELCOME, timeout=5000)
    texts = " ".join(visible_texts(window))
    for value in personal_values():
        assert value not in texts
    assert "139" not in visit.question.line.text()
    assert "无操作" in visit.welcome.message.text()


def test_more_time_keeps_the_visit(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal(idle_timeout_s=0.2, idle_warning_s=30.0)
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    qtbot.waitUntil(window.idle_banner.isVisible, timeout=3000)
    qtbot.mouseClick(window.idle_button, Qt.MouseButton.LeftButton)
    assert not window.idle_banner.isVisible()
    assert visit.session.step is Step.QUESTION


def test_taking_the_card_away_ends_the_visit(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    assert terminal.parts.demo_reader is not None
    terminal.parts.demo_reader.remove()
    wait_step(qtbot, terminal, Step.WELCOME)
    assert "取走" in visit.welcome.message.text()
    assert visit.session.identity is None


def test_language_switch_keeps_what_was_typed(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "1391")
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert visit.question.next_button.text() == "Next"
    assert visit.question.line.text() == "139 1"  # shown in the groups a phone number is read in
    assert visit.question.value() == "1391"
    assert window.language_button.text() == "中文"
    qtbot.mouseClick(window.language_button, Qt.MouseButton.LeftButton)
    assert visit.question.next_button.text() == "下一步"


def test_keyboard_alone_reaches_the_form(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)  # shortcuts belong to the active window
    qtbot.keyClick(window, Qt.Key.Key_F2)
    wait_step(qtbot, terminal, Step.SERVICES)
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Return)
    wait_step(qtbot, terminal, Step.GUIDE)
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Return)
    wait_step(qtbot, terminal, Step.QUESTION)
    assert window.focusWidget() is visit.question.line
    qtbot.keyClicks(visit.question.line, PHONE)
    qtbot.keyClick(visit.question.line, Qt.Key.Key_Return)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "address"
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Escape)
    assert visit.session.current_question.field == "phone"
    assert visit.question.value() == PHONE
    assert visit.question.line.text() == "139 1234 5678"


def test_questions_are_read_aloud(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    assert window.voice.spoken[-1].startswith(visit.question.question.text())


def test_unusable_catalogue_and_no_platform_shows_a_clear_message(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"services": "nope"}', encoding="utf-8")
    terminal: Terminal = make_terminal(bundled=broken, platform_url=closed_port_url())
    window = terminal.window
    visit = terminal.visit
    page = visit.out_of_service
    assert window.stack.currentWidget() is page
    assert page.message.text() == "本机暂停服务，请到人工窗口办理。"
    assert "服务事项列表无法加载" in page.detail.text()  # the reason, small, for staff
    assert "Traceback" not in " ".join(visible_texts(window))
    # Nothing a person can press takes the terminal past it: no way back, no language trick.
    assert not [b for b in page.findChildren(QPushButton) if b.isVisible()]
    window.language_button.click()
    assert window.stack.currentWidget() is page
    assert page.message.text().startswith("This terminal is not working")
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.stack.currentWidget() is page


def _self_check(tmp_path: Path, flag: str) -> tuple[list[str], str]:
    env = {**os.environ, "HALL_DATA_DIR": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--demo", flag],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    path = Path(lines[-1])
    assert path.suffix == ".pdf" and path.exists() and path.is_relative_to(tmp_path)
    return lines, extract_text(str(path))


def test_self_check_shows_the_demo_online_from_card_to_tracking_page(tmp_path: Path) -> None:
    lines, receipt = _self_check(tmp_path, "--self-check")
    # The visit began before the embedded platform was up; the submission waited for it.
    assert lines[-2].startswith("online: K01-")
    number, url = lines[-2].split()[1:3]
    assert number in receipt
    assert "政务服务平台已收到本申请" in receipt.replace("\n", "")
    assert "/track?t=" in url


def test_offline_check_keeps_the_application_in_the_outbox(tmp_path: Path) -> None:
    lines, receipt = _self_check(tmp_path, "--offline-check")
    assert lines[-2].startswith("offline: K01-")
    assert "网络恢复后将自动上传" in receipt.replace("\n", "")
    assert "政务服务平台已收到本申请" not in receipt.replace("\n", "")
