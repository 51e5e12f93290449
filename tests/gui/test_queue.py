"""The staff view of the upload queue in counter and rural modes, through the real window."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kiosk.config import Mode
from kiosk.session import Step
from kiosk.sync import SyncStatus
from offline_queue.outbox import State
from tests.fixtures.badpeer import BadPeer
from tests.gui.conftest import MakeTerminal, closed_port_url, visible_texts
from tests.gui.test_visit import (
    PERSON_ID,
    PERSON_NAME,
    answer_residence_permit,
    open_form,
    submit,
    wait_step,
)
from ui.app import Terminal


def open_queue(qtbot: QtBot, terminal: Terminal) -> None:
    window, queue = terminal.window, terminal.queue
    qtbot.keyClick(window, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is queue.queue_page, timeout=2000)
    qtbot.waitUntil(lambda: queue.queue_page.table.rowCount() > 0, timeout=5000)


def row_texts(terminal: Terminal, row: int) -> list[str]:
    queue = terminal.queue
    table = queue.queue_page.table
    return [table.item(row, column).text() for column in range(table.columnCount())]


def test_rural_offline_shows_the_unsent_count_everywhere_and_lists_the_row(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.RURAL, platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.5
    window = terminal.window
    visit, queue = terminal.visit, terminal.queue
    assert queue.queue_button.isVisible()
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert not result.delivered
    qtbot.waitUntil(lambda: "待上传：1 件" in queue.queue_button.text(), timeout=5000)
    assert "上次联网：从未" in queue.queue_button.text()
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert queue.queue_button.isVisible() and "待上传：1 件" in queue.queue_button.text()

    open_queue(qtbot, terminal)
    cells = row_texts(terminal, 0)
    assert cells[0].startswith(result.receipt_number + "\n")
    assert cells[1] == "居住证申领"
    assert cells[2] == "张*英"
    assert cells[3].startswith("等待上传")
    assert "网络" in cells[3]  # why it waits: no connection
    assert int(cells[4]) >= 1
    shown = " ".join(visible_texts(window))
    assert PERSON_NAME not in shown and PERSON_ID not in shown
    assert "目前无法连接平台" in queue.queue_page.contact.text()

    # leaving the queue forgets the rows it showed
    qtbot.mouseClick(queue.queue_page.back_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is visit.welcome
    assert queue.queue_page.table.rowCount() == 0


def test_a_rejected_submission_is_explained_and_retried_by_staff(
    qtbot: QtBot, make_terminal: MakeTerminal, bad_peer: BadPeer
) -> None:
    bad_peer.mode = "rejected"
    terminal = make_terminal(mode=Mode.COUNTER, platform_url=bad_peer.base_url)
    visit, queue = terminal.visit, terminal.queue
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert not result.delivered
    outbox = terminal.parts.outbox
    assert outbox.state_of(result.submission_id) is State.REJECTED
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)

    open_queue(qtbot, terminal)
    page = queue.queue_page
    status = row_texts(terminal, 0)[3]
    assert status.startswith("平台未受理")
    assert "phone (pattern)" in status
    assert not page.retry_button.isEnabled()  # nothing selected yet
    page.table.selectRow(0)
    assert page.retry_button.isEnabled()

    posts_before = bad_peer.posts()
    bad_peer.mode = "accept"
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: outbox.state_of(result.submission_id) is State.DELIVERED, timeout=10000
    )
    assert bad_peer.posts() == posts_before + 1
    qtbot.waitUntil(lambda: row_texts(terminal, 0)[3] == "已送达", timeout=5000)
    assert row_texts(terminal, 0)[4] == "2"
    # the last contact is now a time of day
    qtbot.waitUntil(
        lambda: re.search(r"上次联网：\d\d:\d\d", queue.queue_button.text()) is not None,
        timeout=5000,
    )
    assert "待上传：0 件" in queue.queue_button.text()


def test_retry_all_skips_the_backoff(
    qtbot: QtBot, make_terminal: MakeTerminal, bad_peer: BadPeer
) -> None:
    bad_peer.mode = "busy"  # 503 with Retry-After: the row waits seconds before its next try
    terminal = make_terminal(mode=Mode.RURAL, platform_url=bad_peer.base_url)
    terminal.parts.submitter._upload_wait_s = 0.5
    visit, queue = terminal.visit, terminal.queue
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    outbox = terminal.parts.outbox
    qtbot.waitUntil(lambda: outbox.state_of(result.submission_id) is State.QUEUED, timeout=5000)
    due = outbox.next_due_at()
    assert due is not None
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    open_queue(qtbot, terminal)
    assert "平台繁忙" in row_texts(terminal, 0)[3]
    bad_peer.mode = "accept"
    qtbot.mouseClick(queue.queue_page.retry_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: outbox.state_of(result.submission_id) is State.DELIVERED, timeout=5000
    )


def test_the_kiosk_has_no_staff_queue(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal(mode=Mode.KIOSK)
    window = terminal.window
    visit = terminal.visit
    assert terminal.queue is None
    shown = " ".join(visible_texts(window))
    assert "上传队列" not in shown and "待上传" not in shown  # no staff wording on a kiosk
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.stack.currentWidget() is visit.welcome


def test_progress_follows_a_draining_backlog(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal(mode=Mode.RURAL, platform_url=closed_port_url())
    window, queue = terminal.window, terminal.queue
    terminal.parts.sync.stop()  # only the statuses below reach the window
    QApplication.processEvents()

    def status(pending: int, draining: bool = True) -> SyncStatus:
        return SyncStatus(
            pending=pending,
            delivered_total=0,
            needs_attention=0,
            rejected=0,
            last_success_at=None,
            last_error=None,
            online=True,
            draining=draining,
        )

    queue.update_queue_status(status(40))
    assert queue.queue_progress.isVisible()
    assert (queue.queue_progress.value(), queue.queue_progress.maximum()) == (0, 40)
    queue.update_queue_status(status(25))
    assert queue.queue_progress.value() == 15
    queue.update_queue_status(status(30))  # more arrived while draining: the total grows
    assert (queue.queue_progress.value(), queue.queue_progress.maximum()) == (10, 40)
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert queue.queue_page.progress.isVisible()
    assert queue.queue_page.progress.text() == "正在上传：10 / 40"
    queue.update_queue_status(status(0, draining=False))
    assert not queue.queue_progress.isVisible()
    assert not queue.queue_page.progress.isVisible()
