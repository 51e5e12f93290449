"""The counter form: staff type every answer on one page, the citizen (or their agent, with the
agent's own card) reads the summary and signs, and the platform gets the application with the
staff member, the assisted flag and the signature."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from kiosk.config import Mode
from kiosk.session import EndReason, Step
from refplatform.server import RunningPlatform
from tests.gui.conftest import STAFF_ID, MakeTerminal, visible_texts
from tests.gui.counter import (
    Count,
    ask_to_confirm,
    confirm_and_submit,
    counter_submission,
    open_counter_form,
    sign,
    type_residence_permit,
)
from tests.gui.test_visit import ADDRESS, PERSON_ID, PERSON_NAME, PHONE, wait_step

AGENT_ID = "110101198001010010"


def _stored(platform: RunningPlatform, submission_id: str) -> dict[str, object]:
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?", (submission_id,)
        ).fetchone()
    assert row is not None, "the platform does not have the submission"
    stored = json.loads(row[0])
    assert isinstance(stored, dict)
    return stored


def _files(platform: RunningPlatform, submission_id: str) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(platform.db_path) as db:
        rows = db.execute(
            "SELECT name, content_type, data FROM attachments WHERE submission_id = ?"
            " ORDER BY ordinal",
            (submission_id,),
        ).fetchall()
    return [(name, kind, bytes(data)) for name, kind, data in rows]


def test_a_clerk_types_the_whole_form_and_the_citizen_signs(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    terminal.window.resize(1920, 1080)
    count = Count()
    page = open_counter_form(qtbot, terminal, count)
    # Everything of the service on one page, the card beside it, the keys on screen.
    assert list(page.editors) == ["phone", "address", "reason", "residence_start", "collection"]
    texts = " ".join(visible_texts(terminal.window))
    assert PERSON_NAME in texts and "110101********0021" in texts
    assert "Ctrl+Enter" in page.shortcuts.text() and page.shortcuts.isVisible()
    qtbot.waitUntil(lambda: not page.photo.text().startswith("正在"), timeout=5000)

    type_residence_permit(qtbot, terminal, count)
    # A material from a file goes with it (staff add it through the panel's own path).
    materials = terminal.visit.materials
    assert materials is not None and materials.isVisible()
    pdf = tmp_path / "居住证明.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    materials.add_path(pdf)
    qtbot.waitUntil(lambda: len(materials.materials) == 1, timeout=5000)
    ask_to_confirm(qtbot, terminal, count)
    confirm = terminal.visit.confirm
    assert confirm is not None
    # The citizen reads what was typed, in large type.
    shown = " ".join(visible_texts(confirm))
    assert ADDRESS in shown and "139" in shown
    assert confirm.materials.text() == "随附材料：居住证明.pdf"  # what goes with it, by name
    # Submitting without a signature is refused, with the reason on the screen.
    qtbot.mouseClick(confirm.submit_button, Qt.MouseButton.LeftButton)
    assert terminal.visit.session.step is Step.CONFIRM
    assert "签名" in confirm.summary.text()

    result = confirm_and_submit(qtbot, terminal, count)
    assert result.delivered
    stored = _stored(platform_server, result.submission_id)
    assert stored["operator_id"] == STAFF_ID and stored["channel"] == "counter"
    assistance = stored["assistance"]
    assert isinstance(assistance, dict)
    assert assistance["assisted"] is True and assistance["citizen_present"] is True
    assert assistance["agent"] is None and assistance["signed_by"] == "applicant"
    answers = stored["answers"]
    assert isinstance(answers, dict)
    assert answers["phone"] == PHONE and answers["address"] == ADDRESS
    assert answers["reason"] == "work" and answers["residence_start"] == "2025-06-01"
    files = _files(platform_server, result.submission_id)
    assert [(name, kind) for name, kind, _ in files] == [
        ("signature.png", "image/png"),
        ("居住证明.pdf", "application/pdf"),
    ]
    assert files[1][2] == pdf.read_bytes()
    signature = files[0][2]
    assert hashlib.sha256(signature).hexdigest() == assistance["signature_sha256"]
    image = QImage.fromData(signature)
    assert not image.isNull() and image.width() > 100
    # Keys and clicks from the card to the receipt beyond the answers' own characters: one to
    # choose the service, one per answer to move on, two for the lists, one to confirm, one to
    # submit (benchmarks/counter_keys.py reports the whole count).
    typed = len(PHONE) + len(ADDRESS) + len("20250601")
    assert count.keys + count.clicks - typed == 10, count.log


def test_a_relative_applies_with_their_own_card_and_signs(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(mode=Mode.RURAL)
    count = Count()
    form = open_counter_form(qtbot, terminal, count)
    type_residence_permit(qtbot, terminal, count)
    # Staff say who applies: a relative, for the applicant who is not here.
    assert not form.relation_box.isVisible()
    form.mode.setFocus()
    count.key(qtbot, Qt.Key.Key_Down)
    assert form.wants_agent_card() and form.relation_box.isVisible()
    assert "本人的身份证" in form.agent_line.text()
    # Without the agent's card nothing goes to the citizen.
    count.key(qtbot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert terminal.visit.session.step is Step.FORM
    assert "代办人本人的身份证" in form.summary.text()
    # The cards change places on the one reader: the applicant's comes off (nobody is asked
    # whether to go on), the agent's own goes on.
    applicant = terminal.visit.session.identity
    assert applicant is not None
    reader = terminal.parts.demo_reader
    assert reader is not None
    reader.remove()
    reader.present(applicant)  # the applicant's own card again is not an agent
    reader.remove()
    agent = dataclasses.replace(applicant, name="李国强", id_number=AGENT_ID)
    reader.present(agent)
    qtbot.waitUntil(lambda: form.agent_card() is not None, timeout=5000)
    assert form.agent_card() == agent and terminal.visit.session.identity is applicant
    assert not terminal.card.card_banner.isVisible()
    assert "李*强" in form.agent_line.text() and "李国强" not in form.agent_line.text()
    reader.remove()  # the agent takes their card back: the visit goes on
    assert terminal.visit.session.step is Step.FORM
    # No relation chosen yet: asked for.
    count.key(qtbot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert terminal.visit.session.step is Step.FORM and "关系" in form.summary.text()
    form.relation_box.setFocus()
    for _ in range(2):  # (choose) → spouse → son or daughter
        count.key(qtbot, Qt.Key.Key_Down)
    assert form.relation() == "child"
    ask_to_confirm(qtbot, terminal, count)
    confirm = terminal.visit.confirm
    assert confirm is not None
    assert "代办人李*强" in confirm.signer.text()
    # Not signed yet: asked for.
    qtbot.mouseClick(confirm.submit_button, Qt.MouseButton.LeftButton)
    assert terminal.visit.session.step is Step.CONFIRM and "签名" in confirm.summary.text()
    sign(qtbot, confirm.signature.pad, count)
    with qtbot.waitSignal(terminal.visit.submission_done, timeout=15000) as done:
        qtbot.mouseClick(confirm.submit_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.DONE)
    stored = _stored(platform_server, done.args[0].submission_id)
    assistance = stored["assistance"]
    assert isinstance(assistance, dict)
    assert assistance["citizen_present"] is False and assistance["signed_by"] == "agent"
    assert assistance["agent"] == {"name": "李国强", "id_number": AGENT_ID, "relation": "child"}
    assert stored["applicant"]["id_number"] == PERSON_ID  # type: ignore[index]
    assert stored["channel"] == "rural" and stored["operator_id"] == STAFF_ID


def test_wrong_answers_are_shown_beside_their_fields_and_nothing_goes_to_the_citizen(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    count = Count()
    page = open_counter_form(qtbot, terminal, count)
    count.type(qtbot, "1391234")  # too short
    count.key(qtbot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(page.editors["phone"].error.isVisible, timeout=5000)
    assert terminal.visit.session.step is Step.FORM
    assert page.summary.isVisible() and "手机号码：请输入11位手机号码" in page.summary.text()
    # The focus is on the first wrong answer, what was typed is kept.
    assert terminal.window.focusWidget() is page.editors["phone"].widget
    phone = page.editors["phone"].widget
    assert isinstance(phone, QLineEdit) and phone.text() == "1391234"
    qtbot.keyClicks(phone, "5")  # putting it right takes the old complaint away
    assert not page.editors["phone"].error.isVisible()
    # Esc goes back to the services; the visit is not over.
    qtbot.keyClick(phone, Qt.Key.Key_Escape)
    wait_step(qtbot, terminal, Step.SERVICES)


def test_the_signature_and_the_form_are_gone_when_the_visit_ends(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    count = Count()
    page = open_counter_form(qtbot, terminal, count)
    type_residence_permit(qtbot, terminal, count)
    ask_to_confirm(qtbot, terminal, count)
    confirm = terminal.visit.confirm
    assert confirm is not None
    sign(qtbot, confirm.signature.pad, count)
    # Back to the form: what was signed may change, so the signature goes.
    qtbot.keyClick(confirm.submit_button, Qt.Key.Key_Escape)
    wait_step(qtbot, terminal, Step.FORM)
    assert not confirm.signature.pad.has_ink()
    phone = page.editors["phone"].widget
    assert isinstance(phone, QLineEdit) and phone.text() == PHONE  # the answers are kept
    terminal.window.end_visit(EndReason.CANCELLED)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert not page.editors and not confirm.signature.pad.has_ink()
    texts = " ".join(visible_texts(terminal.window))
    for personal in (PERSON_NAME, PERSON_ID, PHONE, ADDRESS):
        assert personal not in texts


def test_cards_change_places_even_where_taking_the_card_ends_a_visit(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_removal_ends_session=True)
    form = open_counter_form(qtbot, terminal)
    reader = terminal.parts.demo_reader
    applicant = terminal.visit.session.identity
    assert reader is not None and applicant is not None
    form.mode.setCurrentIndex(form.mode.findData("agent"))
    reader.remove()
    agent = dataclasses.replace(applicant, name="李国强", id_number=AGENT_ID)
    reader.present(agent)
    qtbot.waitUntil(lambda: form.agent_card() is not None, timeout=5000)
    assert terminal.visit.session.step is Step.FORM and terminal.visit.session.identity is applicant
    # Back to the applicant applying in person: a card taken away ends the visit again.
    form.mode.setCurrentIndex(form.mode.findData("present"))
    reader.remove()
    wait_step(qtbot, terminal, Step.WELCOME)


def test_staff_print_a_receipt_again_saying_truly_whether_it_was_uploaded(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    from pdfminer.high_level import extract_text

    from tests.gui.conftest import closed_port_url
    from tests.gui.test_queue import open_queue

    terminal = make_terminal(mode=Mode.COUNTER, platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.2
    result = counter_submission(qtbot, terminal)
    assert not result.delivered and result.receipt_path is not None
    result.receipt_path.unlink()  # the first one went with the citizen
    terminal.window.end_visit(EndReason.FINISHED)
    open_queue(qtbot, terminal)
    queue = terminal.queue
    assert queue is not None
    page = queue.queue_page
    page.table.selectRow(0)
    assert page.reprint_button.isVisible() and page.reprint_button.isEnabled()
    qtbot.mouseClick(page.reprint_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.notice.text() == "回执已重新打印。", timeout=10000)
    text = extract_text(result.receipt_path)
    assert result.receipt_number in text and "张*英" in text and "110101********0021" in text
    assert PERSON_NAME not in text and PERSON_ID not in text
    assert "网络恢复后将自动上传" in "".join(text.split())  # not uploaded yet, and it says so
    audit = terminal.parts.audit
    assert audit is not None
    qtbot.waitUntil(lambda: any(e.kind == "reprint" for e in audit.entries()), timeout=5000)
    entry = next(e for e in audit.entries() if e.kind == "reprint")
    assert entry.staff == STAFF_ID
    assert entry.details == {
        "submission_id": result.submission_id,
        "receipt_number": result.receipt_number,
        "result": "ok",
    }
