"""Counter and rural terminals: a staff member signs in before anything, is named in the header,
is named on every submission, and is signed out on demand and when the terminal sits idle."""

from __future__ import annotations

import json
import sqlite3

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.config import Mode
from kiosk.session import Step
from kiosk.staff import ScryptCost, StaffDirectory
from refplatform.server import RunningPlatform
from tests.gui.conftest import STAFF_ID, STAFF_NAME, STAFF_PIN, MakeTerminal, visible_texts
from tests.gui.counter import (
    Count,
    ask_to_confirm,
    counter_submission,
    open_counter_form,
    sign,
    type_residence_permit,
)
from tests.gui.test_visit import PERSON_ID, PERSON_NAME, PHONE, wait_step
from ui.app import Terminal

CHEAP = ScryptCost(n=2**4, r=1, p=1)


def _provision(terminal: Terminal) -> None:
    StaffDirectory(terminal.parts.config.data_dir, cost=CHEAP).add(STAFF_ID, STAFF_NAME, STAFF_PIN)


def _type_and_sign_in(qtbot: QtBot, terminal: Terminal, number: str, pin: str) -> None:
    assert terminal.staff is not None
    page = terminal.staff.page
    page.number.setFocus()
    qtbot.keyClicks(page.number, number)
    qtbot.keyClick(page.number, Qt.Key.Key_Return)  # on to the PIN
    assert terminal.window.focusWidget() is page.pin
    qtbot.keyClicks(page.pin, pin)
    qtbot.keyClick(page.pin, Qt.Key.Key_Return)


def test_nothing_happens_at_a_counter_before_a_staff_member_signs_in(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, signed_in=False)
    assert terminal.staff is not None
    _provision(terminal)
    page = terminal.staff.page
    qtbot.waitUntil(lambda: terminal.window.current_page() is page, timeout=5000)
    # A card is not read, and the queue is not opened, for nobody.
    terminal.visit.card_read(terminal.parts.demo_people[0])
    assert terminal.visit.session.step is Step.WELCOME
    assert terminal.window.current_page() is page
    assert terminal.queue is not None
    terminal.queue.open_queue()
    assert terminal.window.current_page() is page

    _type_and_sign_in(qtbot, terminal, STAFF_ID, "999999")
    qtbot.waitUntil(page.error.isVisible, timeout=5000)
    assert page.error.text() == "工号或密码不正确，请重新输入。"
    assert page.pin.text() == "" and page.number.text() == ""  # nothing typed stays on screen
    assert terminal.window.current_page() is page

    page.number.setText("")
    _type_and_sign_in(qtbot, terminal, STAFF_ID.lower(), STAFF_PIN)
    wait_step(qtbot, terminal, Step.WELCOME)
    header = terminal.staff.sign_out_button
    assert header.isVisible() and header.text() == f"{STAFF_NAME}（{STAFF_ID}）· 退出登录"
    assert STAFF_PIN not in " ".join(visible_texts(terminal.window))
    assert not terminal.window.call_staff_button.isVisible()  # staff are already here

    result = counter_submission(qtbot, terminal)
    assert result.delivered
    with sqlite3.connect(platform_server.db_path) as db:
        row = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?",
            (result.submission_id,),
        ).fetchone()
    stored = json.loads(row[0])
    assert stored["operator_id"] == STAFF_ID and stored["channel"] == "counter"

    # The audit log has it all, chained and signed, and nothing of the citizen.
    audit = terminal.parts.audit
    assert audit is not None
    qtbot.waitUntil(lambda: len(audit.entries()) >= 3, timeout=5000)
    entries = audit.entries()
    assert [e.kind for e in entries][:3] == ["sign_in_refused", "sign_in", "submission"]
    assert entries[1].staff == STAFF_ID and entries[2].staff == STAFF_ID
    assert entries[2].details["submission_id"] == result.submission_id
    from kiosk.audit_log import verify
    from kiosk.terminal_auth import load_identity

    identity = load_identity(terminal.parts.config.data_dir, terminal.parts.config.platform_url)
    checked = verify(terminal.parts.config.data_dir / "audit.sqlite3", identity.key.public_key())
    assert checked.ok and checked.entries == len(entries)
    # The platform has its own checked copy, uploaded with the queue.
    def on_platform() -> list[str]:
        with sqlite3.connect(platform_server.db_path) as db:
            rows = db.execute(
                "SELECT kind FROM audit_entries WHERE terminal_id = ? ORDER BY seq",
                (terminal.parts.config.terminal_id,),
            ).fetchall()
        return [kind for (kind,) in rows]

    terminal.parts.sync.wake()
    qtbot.waitUntil(lambda: "submission" in on_platform(), timeout=10_000)
    assert on_platform()[:3] == ["sign_in_refused", "sign_in", "submission"]
    raw = (terminal.parts.config.data_dir / "audit.sqlite3").read_bytes()
    for personal in (PERSON_NAME, PERSON_ID, PHONE, STAFF_PIN):
        assert personal.encode() not in raw


def test_signing_out_ends_the_visit_and_asks_again(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.RURAL)
    assert terminal.staff is not None
    open_counter_form(qtbot, terminal)
    qtbot.mouseClick(terminal.staff.sign_out_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: terminal.window.current_page() is terminal.staff.page, timeout=5000)
    assert terminal.visit.session.step is Step.WELCOME and terminal.visit.session.identity is None
    assert not terminal.staff.sign_out_button.isVisible()
    assert terminal.staff.operator_id() is None


def test_an_idle_counter_signs_its_staff_member_out(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, staff_idle_s=0.5)
    assert terminal.staff is not None
    wait_step(qtbot, terminal, Step.WELCOME)
    qtbot.waitUntil(lambda: terminal.window.current_page() is terminal.staff.page, timeout=5000)
    assert terminal.staff.needs_sign_in()


def test_repeated_wrong_pins_lock_the_number_for_a_while(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, signed_in=False)
    assert terminal.staff is not None
    _provision(terminal)
    page = terminal.staff.page
    for _attempt in range(3):
        page.number.setText("")
        page.show_error("")
        _type_and_sign_in(qtbot, terminal, STAFF_ID, "999999")
        qtbot.waitUntil(page.error.isVisible, timeout=5000)
    assert page.error.text().startswith("输错次数过多，请等待")  # and says how long
    page.number.setText("")
    page.show_error("")
    _type_and_sign_in(qtbot, terminal, STAFF_ID, STAFF_PIN)  # even the right PIN, for now
    qtbot.waitUntil(page.error.isVisible, timeout=5000)
    assert terminal.staff.needs_sign_in()


def test_a_session_that_ran_out_submits_nothing_and_ends_the_visit(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    assert terminal.staff is not None
    count = Count()
    open_counter_form(qtbot, terminal, count)
    type_residence_permit(qtbot, terminal, count)
    ask_to_confirm(qtbot, terminal, count)
    confirm = terminal.visit.confirm
    assert confirm is not None
    sign(qtbot, confirm.signature.pad, count)
    # The staff member walked away longer than the idle time allows, then Submit is pressed.
    terminal.staff._sessions._idle_s = 0.001
    qtbot.mouseClick(confirm.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: terminal.window.current_page() is terminal.staff.page, timeout=5000)
    assert terminal.visit.session.identity is None  # the citizen's form is gone with the visit
    assert terminal.parts.outbox.pending_count() == 0  # and nothing was saved unattributed
    audit = terminal.parts.audit
    assert audit is not None
    qtbot.waitUntil(lambda: any(e.kind == "sign_out" for e in audit.entries()), timeout=5000)
    out = next(e for e in audit.entries() if e.kind == "sign_out")
    assert out.staff == STAFF_ID and out.details == {"reason": "idle"}


def test_staff_find_a_submission_and_see_only_their_own_of_today(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    from tests.gui.conftest import closed_port_url
    from tests.gui.test_queue import open_queue

    terminal = make_terminal(mode=Mode.COUNTER, platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.2
    mine = []
    for _round in range(2):  # two of this staff member's, made through the real form
        mine.append(counter_submission(qtbot, terminal))
        qtbot.mouseClick(terminal.visit.done.finish_button, Qt.MouseButton.LeftButton)
        wait_step(qtbot, terminal, Step.WELCOME)
    # And one from another member's session, earlier (queued with its own summary).
    from offline_queue.outbox import new_item_id

    other = new_item_id()
    summary = {
        "receipt_number": "C09-20261129-0001",
        "service_id": "senior-card",
        "created_at": "2026-11-29T09:00:00+08:00",
        "masked_name": "王*",
        "operator_id": "S0002",
    }
    terminal.parts.outbox.enqueue(
        "submission",
        json.dumps({"submission_id": other}).encode(),
        json.dumps(summary, ensure_ascii=False).encode(),
        item_id=other,
    )
    open_queue(qtbot, terminal)
    page = terminal.queue.queue_page if terminal.queue else None
    assert page is not None
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=5000)
    assert page.mine_button.isVisible()
    qtbot.keyClicks(page.search, mine[1].receipt_number[-4:])
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=2000)
    assert page.table.item(0, 0).text().startswith(mine[1].receipt_number)
    page.search.setText("")
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=2000)
    qtbot.mouseClick(page.mine_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.table.rowCount() == 2, timeout=2000)
    shown = {page.table.item(i, 0).text().split("\n")[0] for i in range(2)}
    assert shown == {r.receipt_number for r in mine}
