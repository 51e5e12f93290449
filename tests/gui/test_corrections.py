"""Staff correct a submission the platform refused, through the real window, against the real
platform on 127.0.0.1: refused, shown with what is wrong, corrected, delivered under its own id."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.config import Mode
from kiosk.corrections import CORRECTION_KIND, Corrector
from kiosk.session import Step
from kiosk.terminal_auth import load_identity
from offline_queue.outbox import State
from refplatform.server import RunningPlatform, start_in_thread
from tests.fixtures.badpeer import Gate
from tests.fixtures.platform import DEMO_CATALOGUE
from tests.gui.conftest import STAFF_ID
from tests.gui.counter import (
    Count,
    ask_to_confirm,
    confirm_and_submit,
    open_counter_form,
    type_residence_permit,
)
from tests.gui.enrolled import EnrolledTerminals
from tests.gui.test_queue import open_queue, question_label, row_texts
from tests.gui.test_visit import PHONE, wait_step
from ui.app import Terminal

# The platform's rule for a mobile number is stricter than the one the terminal shipped with
# (the province changed it while the terminal was offline): the terminal takes PHONE, the
# platform refuses it.
STRICT_PHONE = r"^13[0-8]\d{8}$"
GOOD_PHONE = "13812345678"


@pytest.fixture
def enrolled() -> Iterator[EnrolledTerminals]:
    terminals = EnrolledTerminals()
    yield terminals
    terminals.close()


@pytest.fixture
def strict_platform(tmp_path: Path) -> Iterator[RunningPlatform]:
    doc: dict[str, Any] = json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    [service] = [s for s in doc["services"] if s["id"] == "residence-permit"]
    service["form"]["properties"]["phone"]["pattern"] = STRICT_PHONE
    path = tmp_path / "strict-catalogue.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with start_in_thread(tmp_path / "platform.sqlite3", path) as running:
        yield running


@pytest.fixture
def gate() -> Iterator[Gate]:
    """The network is away until the test opens it."""
    closed = Gate()
    yield closed
    closed.close()


def platform_case(platform: RunningPlatform, submission_id: str) -> tuple[str, dict[str, Any]]:
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT receipt_number, request_json FROM submissions WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
    assert row is not None, "the platform has no received submission under this id"
    return str(row[0]), dict(json.loads(row[1])["answers"])


def wire_corrector(terminal: Terminal) -> None:
    """As ui/app.py wires it: the outbox, the platform's sealing key, the audit log, the sync."""
    parts = terminal.parts
    identity = load_identity(parts.config.data_dir, parts.config.platform_url)
    assert terminal.queue is not None
    terminal.queue.set_corrector(
        Corrector(
            parts.outbox,
            seal_to=identity.enrolment.sealing_public_key(),
            audit=parts.audit,
            wake=parts.sync.wake,
        )
    )


def test_staff_correct_a_refused_submission_and_it_is_delivered_under_its_own_id(
    qtbot: QtBot,
    strict_platform: RunningPlatform,
    enrolled: EnrolledTerminals,
    gate: Gate,
    tmp_path: Path,
) -> None:
    terminal = enrolled.make(
        strict_platform, tmp_path / "data", url=gate.base_url, mode=Mode.COUNTER
    )
    wire_corrector(terminal)
    terminal.parts.submitter._upload_wait_s = 0.5
    visit, queue = terminal.visit, terminal.queue
    assert queue is not None
    count = Count()
    open_counter_form(qtbot, terminal, count)
    type_residence_permit(qtbot, terminal, count)  # the terminal's own check takes PHONE
    ask_to_confirm(qtbot, terminal, count)
    result = confirm_and_submit(qtbot, terminal, count)
    assert not result.delivered
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)

    outbox = terminal.parts.outbox
    sid = result.submission_id
    host, port = strict_platform.base_url.removeprefix("http://").split(":")
    gate.open(host, int(port))
    terminal.parts.sync.wake()
    qtbot.waitUntil(lambda: outbox.state_of(sid) is State.REJECTED, timeout=20000)

    open_queue(qtbot, terminal)
    page = queue.queue_page
    label = question_label("residence-permit", "phone", "zh_CN")
    expected = f"{label}：请输入11位手机号码，以1开头。"
    qtbot.waitUntil(lambda: expected in row_texts(terminal, 0)[3], timeout=5000)
    status = row_texts(terminal, 0)[3]
    assert status.startswith("平台未受理")
    assert PHONE not in status
    assert page.table.rowCount() == 1
    assert page.correct_button.isVisible() and page.correct_button.text() == "修改后重新提交"
    assert not page.correct_button.isEnabled()  # nothing selected yet
    page.table.selectRow(0)
    assert page.correct_button.isEnabled()
    page.grab().save(str(tmp_path / "queue_page.png"))
    qtbot.mouseClick(page.correct_button, Qt.MouseButton.LeftButton)

    correction = queue.correction_page
    qtbot.waitUntil(lambda: terminal.window.stack.currentWidget() is correction, timeout=2000)
    assert correction.submit_button.text() == "提交修改"
    assert correction.cancel_button.text() == "取消"
    assert result.receipt_number in correction.context.text()
    [field] = correction._fields
    assert field.field == "phone" and field.caption.text() == expected
    assert field.line is not None and field.line.isVisible()
    assert field.line.accessibleName() == label
    correction.grab().save(str(tmp_path / "correction_page.png"))

    # The form's own rule first: a number it refuses never leaves the page.
    field.line.setText("123")
    qtbot.mouseClick(correction.submit_button, Qt.MouseButton.LeftButton)
    assert field.error.isVisible() and field.error.text() == "请输入11位手机号码，以1开头。"
    assert terminal.window.stack.currentWidget() is correction
    assert outbox.counts()["queued"] == 0

    field.line.setText(GOOD_PHONE)
    qtbot.mouseClick(correction.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: outbox.state_of(sid) is State.DELIVERED, timeout=20000)
    qtbot.waitUntil(lambda: terminal.window.stack.currentWidget() is page, timeout=5000)
    assert correction.item_id is None and not correction._fields  # nothing typed is kept

    receipt, answers = platform_case(strict_platform, sid)
    assert receipt == result.receipt_number
    assert answers["phone"] == GOOD_PHONE
    delivered = json.loads(outbox.get_response(sid) or b"{}")
    assert delivered["submission_id"] == sid and delivered["receipt_number"] == receipt

    # One row for the case, delivered; the correction row is not a case of its own.
    qtbot.waitUntil(lambda: row_texts(terminal, 0)[3] == "已送达", timeout=5000)
    assert page.table.rowCount() == 1
    assert row_texts(terminal, 0)[0].startswith(result.receipt_number + "\n")
    kinds = [info.kind for info in outbox.items(states=(State.DELIVERED,))]
    assert sorted(kinds) == sorted(["submission", CORRECTION_KIND])
    assert not page.correct_button.isVisible()

    audit = terminal.parts.audit
    assert audit is not None
    [entry] = [e for e in audit.entries() if e.kind == "correction"]
    assert entry.staff == STAFF_ID
    assert entry.details == {"submission_id": sid, "fields": ["phone"]}
    assert GOOD_PHONE not in json.dumps(entry.details) and PHONE not in json.dumps(entry.details)
