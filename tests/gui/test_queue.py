"""The staff view of the upload queue in counter and rural modes, through the real window."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt
from pytestqt.qtbot import QtBot

from kiosk.config import Mode
from kiosk.session import Step
from kiosk.sync import SyncStatus
from offline_queue.outbox import Outbox, State, new_item_id
from refplatform.faults import Fault, FaultPlan, FaultRule
from refplatform.server import start_in_thread
from tests.fixtures.badpeer import BadPeer, Gate
from tests.fixtures.platform import DEMO_CATALOGUE, demo_submission
from tests.gui.conftest import CATALOGUE, MakeTerminal, closed_port_url, visible_texts
from tests.gui.counter import counter_submission
from tests.gui.enrolled import EnrolledTerminals
from tests.gui.test_visit import PERSON_ID, PERSON_NAME, wait_step
from ui.app import Terminal


@pytest.fixture
def enrolled() -> Iterator[EnrolledTerminals]:
    """Terminals enrolled with a platform started in the test (make_terminal's are enrolled
    with platform_server only)."""
    terminals = EnrolledTerminals()
    yield terminals
    terminals.close()


def open_queue(qtbot: QtBot, terminal: Terminal) -> None:
    window, queue = terminal.window, terminal.queue
    qtbot.keyClick(window, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is queue.queue_page, timeout=2000)
    qtbot.waitUntil(lambda: queue.queue_page.table.rowCount() > 0, timeout=5000)


def row_texts(terminal: Terminal, row: int) -> list[str]:
    queue = terminal.queue
    table = queue.queue_page.table
    return [table.item(row, column).text() for column in range(table.columnCount())]


def question_label(service_id: str, field: str, language: str) -> str:
    """The label the demo catalogue gives a question, read from the catalogue file itself."""
    catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    [service] = [s for s in catalogue["services"] if s["id"] == service_id]
    [question] = [q for q in service["questions"] if q["field"] == field]
    return str(question["label"][language])


def test_rural_offline_shows_the_unsent_count_everywhere_and_lists_the_row(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.RURAL, platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.5
    window = terminal.window
    visit, queue = terminal.visit, terminal.queue
    assert queue.queue_button.isVisible()
    result = counter_submission(qtbot, terminal)
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
    page = queue.queue_page
    assert "待上传：1" in page.summary.text() and "已上传：0" in page.summary.text()
    assert "最早一份已等待：" in page.ages.text() and "分钟" in page.ages.text()
    version = terminal.parts.catalogue.version if terminal.parts.catalogue else "?"
    assert f"服务目录版本：{version}（随软件提供）" in page.ages.text()  # offline since start

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
    result = counter_submission(qtbot, terminal)
    assert not result.delivered
    outbox = terminal.parts.outbox
    assert outbox.state_of(result.submission_id) is State.REJECTED
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)

    open_queue(qtbot, terminal)
    page = queue.queue_page
    status = row_texts(terminal, 0)[3]
    assert status.startswith("平台未受理")
    assert question_label("residence-permit", "phone", "zh_CN") + "：格式不对" in status
    assert "phone" not in status and "pattern" not in status
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
    result = counter_submission(qtbot, terminal)
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


def test_a_refused_answer_is_named_by_its_question_in_the_staff_language(
    qtbot: QtBot, enrolled: EnrolledTerminals, tmp_path: Path
) -> None:
    # The platform refuses every submission: 422 validation_failed naming field "phone".
    plan = FaultPlan(FaultRule(Fault.VALIDATION, count=None))
    with start_in_thread(tmp_path / "refusing.sqlite3", DEMO_CATALOGUE, faults=plan) as refusing:
        terminal = enrolled.make(refusing, tmp_path / "data", mode=Mode.COUNTER)
        window, visit, queue = terminal.window, terminal.visit, terminal.queue
        result = counter_submission(qtbot, terminal)
        assert not result.delivered and result.refused
        assert plan.applied(Fault.VALIDATION) == 1
        # Told on the spot: not the network; staff can correct it in the queue.
        shown = " ".join(visible_texts(terminal.window))
        assert "平台未受理这份申请" in shown and "网络" not in shown
        outbox = terminal.parts.outbox
        assert outbox.state_of(result.submission_id) is State.REJECTED
        qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
        wait_step(qtbot, terminal, Step.WELCOME)

        open_queue(qtbot, terminal)
        status = row_texts(terminal, 0)[3]
        label_zh = question_label("residence-permit", "phone", "zh_CN")
        first, *details = status.split("\n")
        assert first == f"平台未受理：服务平台发现表单有误：{label_zh}：格式不对"
        # and what staff can put right, in the question's own words (kiosk/corrections.py)
        assert details == [f"{label_zh}：请输入11位手机号码，以1开头。"]
        for raw in ("phone", "pattern", "("):
            assert raw not in status

        # The same row for staff who read English: back, switch the language, open it again.
        qtbot.mouseClick(queue.queue_page.back_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(window.language_button, Qt.MouseButton.LeftButton)
        open_queue(qtbot, terminal)
        status = row_texts(terminal, 0)[3]
        label_en = question_label("residence-permit", "phone", "en")
        assert status.split("\n")[0] == (
            "Not accepted by the platform: The platform found problems in the form: "
            f"{label_en}: not in the expected format"
        )
        assert "(pattern)" not in status and "phone:" not in status


@dataclass(frozen=True)
class Seen:
    """The header's bar and the queue page's bar just after the window took in one status."""

    status: SyncStatus
    bar_shown: bool
    bar_value: int
    bar_maximum: int
    page_bar_shown: bool
    page_text: str


class StatusTrace(QObject):
    """Listens to the terminal's status bridge after the queue journey does (slots run in the
    order they were connected), so each entry is what staff saw after that status."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(terminal.window)
        self._queue = terminal.queue
        self.seen: list[Seen] = []
        terminal.status.changed.connect(self.record)

    def record(self, status: SyncStatus) -> None:
        queue = self._queue
        assert queue is not None
        bar, page = queue.queue_progress, queue.queue_page.progress
        self.seen.append(
            Seen(
                status,
                not bar.isHidden(),
                bar.value(),
                bar.maximum(),
                not page.isHidden(),
                page.text(),
            )
        )


def queue_backlog(outbox: Outbox, count: int) -> None:
    """Submissions saved while the platform is away, as the terminal saves them."""
    for _ in range(count):
        body = demo_submission(submission_id=new_item_id())
        summary = {
            "receipt_number": body["receipt_number"],
            "service_id": body["service_id"],
            "masked_name": "王*英",
        }
        outbox.enqueue(
            "submission",
            json.dumps(body, ensure_ascii=False).encode(),
            json.dumps(summary, ensure_ascii=False).encode(),
            item_id=body["submission_id"],
        )


BACKLOG = 300
BATCH_DELAY_S = 0.4  # each request the platform answers this much later: the drain can be seen


def test_progress_follows_a_draining_backlog(
    qtbot: QtBot, enrolled: EnrolledTerminals, net_gate: Gate, tmp_path: Path
) -> None:
    plan = FaultPlan(FaultRule(Fault.DELAY, count=None, delay_s=BATCH_DELAY_S))
    with start_in_thread(tmp_path / "slow.sqlite3", DEMO_CATALOGUE, faults=plan) as slow:
        # The terminal reaches its platform through a gate that is closed: the network is away.
        terminal = enrolled.make(slow, tmp_path / "data", url=net_gate.base_url, mode=Mode.RURAL)
        queue = terminal.queue
        assert queue is not None
        page = queue.queue_page
        trace = StatusTrace(terminal)
        outbox = terminal.parts.outbox
        queue_backlog(outbox, BACKLOG)
        terminal.parts.sync.wake()  # the first try finds no network and stops the drain
        qtbot.waitUntil(
            lambda: (
                f"待上传：{BACKLOG} 件" in queue.queue_button.text()
                and terminal.parts.sync.status().online is False
                and not terminal.parts.sync.status().draining
            ),
            timeout=10000,
        )
        qtbot.waitUntil(queue.queue_progress.isHidden, timeout=5000)
        open_queue(qtbot, terminal)
        offline = len(trace.seen)

        net_gate.open("127.0.0.1", slow.port)  # the network is back
        qtbot.mouseClick(page.retry_all_button, Qt.MouseButton.LeftButton)

        # Mid-drain, as staff see it: a partly filled bar, and the page saying the same.
        qtbot.waitUntil(
            lambda: (
                not queue.queue_progress.isHidden()
                and 0 < queue.queue_progress.value() < queue.queue_progress.maximum()
            ),
            timeout=15000,
        )
        done, total = queue.queue_progress.value(), queue.queue_progress.maximum()
        assert total == BACKLOG
        assert page.progress.isVisible()
        assert (page.progress.value(), page.progress.maximum()) == (done, total)
        assert page.progress.text() == f"正在上传：{done} / {total}"

        qtbot.waitUntil(
            lambda: "待上传：0 件" in queue.queue_button.text() and queue.queue_progress.isHidden(),
            timeout=30000,
        )
        assert page.progress.isHidden()
    assert outbox.counts()[State.DELIVERED.value] == BACKLOG
    assert plan.applied(Fault.DELAY) >= 3  # one row alone, then batches

    # Every status of the drain, as the window took it in: the bar rose and the page followed.
    drain = [seen for seen in trace.seen[offline:] if seen.status.online]
    shown = [seen for seen in drain if seen.bar_shown]
    values = [seen.bar_value for seen in shown]
    assert len(values) >= 3, values
    assert values == sorted(values) and len(set(values)) == len(values), values
    for seen in shown:
        assert seen.bar_maximum == BACKLOG
        assert seen.bar_value == BACKLOG - seen.status.pending
        assert seen.page_bar_shown
        assert seen.page_text == f"正在上传：{seen.bar_value} / {BACKLOG}"
    assert not drain[-1].bar_shown and not drain[-1].page_bar_shown
    assert drain[-1].status.pending == 0
