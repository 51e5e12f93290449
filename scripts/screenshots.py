"""Screenshots of every page of a visit, for the README and for review by eye.

Run under a real X server (xvfb-run -a .venv/bin/python scripts/screenshots.py OUT_DIR) or
offscreen; each page is grabbed from the real window as a person would see it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.app import build_parts  # noqa: E402 - the repository root goes on the path first
from kiosk.config import Config, Mode  # noqa: E402
from kiosk.i18n import set_language  # noqa: E402
from kiosk.session import EndReason, Step  # noqa: E402
from kiosk.terminal_auth import PlatformKey, enrol, enrol_locally  # noqa: E402
from refplatform.keys import PlatformKeys  # noqa: E402
from refplatform.server import start_in_thread  # noqa: E402
from refplatform.terminals import TerminalRegistry  # noqa: E402
from ui.app import Terminal  # noqa: E402
from ui.input_environment import prepare_environment  # noqa: E402

# The panel to draw for: HALL_SHOT_SIZE=1080x1920 (portrait), 1920x1080, 1280x1024.
SIZE = tuple(int(n) for n in os.environ.get("HALL_SHOT_SIZE", "1280x900").split("x"))


def settle(app: QApplication, until: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not reach the expected page")
        app.processEvents()
    for _ in range(5):
        app.processEvents()


def main() -> int:  # noqa: PLR0915 - one visit, step by step, reads best in one place
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HALL_TTS_ENGINE", "mock")
    prepare_environment()
    app = QApplication(sys.argv[:1])
    set_language(os.environ.get("HALL_LANGUAGE", "zh_CN"))
    suffix = "" if os.environ.get("HALL_LANGUAGE", "zh_CN") == "zh_CN" else "-en"
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
        platform = start_in_thread(Path(tmp) / "platform.sqlite3", catalogue)
        config = Config(data_dir=Path(tmp), platform_url=platform.base_url,
                        hall_name="本市政务服务中心", idle_timeout_s=3600)
        # Enrolled as staff would enrol it, with a one-time code from the platform.
        code = TerminalRegistry(platform.db_path).issue_code(config.terminal_id).secret
        enrol(config.data_dir, platform.base_url, code)
        parts = build_parts(config, demo=True, bundled_catalogue=catalogue)
        terminal = Terminal(parts, app)
        window = terminal.window
        visit = terminal.visit
        window.resize(*SIZE)
        window.show()
        terminal.start()

        def shot(name: str) -> None:
            for _ in range(5):
                app.processEvents()
            window.grab().save(str(out / f"{name}{suffix}.png"))

        settle(app, window.isVisible)
        shot("welcome")
        visit.present_demo_card()
        settle(app, lambda: visit.session.step is Step.SERVICES)
        shot("services")
        visit.services.service_buttons[0].click()
        settle(app, lambda: visit.session.step is Step.GUIDE)
        shot("guide")
        visit.guide.start_button.click()
        settle(app, lambda: visit.session.step is Step.QUESTION)
        visit.question.line.setText("1381234")
        visit.question.next_button.click()
        settle(app, lambda: not visit.checking)
        shot("question-error")
        visit.question.line.setText("13812345678")
        visit.question.next_button.click()
        settle(app, lambda: not visit.checking)
        visit.question.line.setText("本市和平路12号3单元401室")
        visit.question.next_button.click()
        settle(app, lambda: not visit.checking)
        shot("question-choice")
        answers = {"reason": "work", "collection": "hall"}
        while visit.session.step is Step.QUESTION:
            q = visit.session.current_question
            if q.widget == "choice":
                wanted = answers.get(q.field, q.options[0].value)
                button = visit.question.choices.button_for(wanted)
                if button is None:
                    raise LookupError(q.field)
                button.click()
            elif q.widget == "date":
                visit.question.line.setText("2025-06-01")
            visit.question.next_button.click()
            settle(app, lambda: not visit.checking)
        settle(app, lambda: not visit.checking)
        settle(app, lambda: visit.session.step is Step.REVIEW)
        shot("review")
        window._idle_warning()  # show the warning without waiting for it
        shot("idle-warning")
        window.keep_going()
        visit.review.submit_button.click()
        settle(app, lambda: visit.session.step is Step.DONE, timeout_s=20)
        shot("done")
        visit.done.finish_button.click()
        settle(app, lambda: visit.session.step is Step.WELCOME)
        shot("after-visit")
        terminal.stop()  # deletes the window
        parts.close()
        platform.stop()
        app.processEvents()
        queue_shots(app, Path(tmp) / "rural", catalogue, out, suffix)
        counter_shots(app, Path(tmp), catalogue, out, suffix)
    print(out)
    return 0


def staff_signs_in(app: QApplication, terminal: Terminal, data: Path, shot: Path) -> None:
    """A service point starts at the staff sign-in (shot taken); an assistant is provisioned
    and signs in."""
    from kiosk.staff import StaffDirectory

    gate = terminal.staff
    if gate is None:
        raise RuntimeError("a rural terminal has a staff sign-in")
    settle(app, lambda: terminal.window.current_page() is gate.page)
    terminal.window.grab().save(str(shot))
    directory = StaffDirectory(data)
    directory.add("S0012", "李敏", "135790")
    gate.signed_in(directory.sign_in("S0012", "135790"))


def queue_shots(  # noqa: PLR0915 - one staff session, step by step
    app: QApplication, data: Path, catalogue: Path, out: Path, suffix: str
) -> None:
    """A rural terminal that has been offline: rows waiting, one refused, one for staff."""
    import json
    import socket

    from devices.readers.base import EventKind, ReaderError, ReaderEvent
    from offline_queue.outbox import new_item_id

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    config = Config(data_dir=data, platform_url=closed, mode=Mode.RURAL,
                    hall_name="幸福村便民服务站", idle_timeout_s=3600)
    # Enrolled with a platform that is away: keys made here, as that platform's would be.
    keys = PlatformKeys(data.parent / "absent-platform-keys")
    enrol_locally(data, closed, config.terminal_id,
                  (PlatformKey(keys.signing_key_id, keys.signing_public_b64),),
                  PlatformKey(keys.sealing_key_id, keys.sealing_public_b64))
    parts = build_parts(config, demo=True, bundled_catalogue=catalogue)
    rows = [("residence-permit", "张*英"), ("pension-certification", "李*国"),
            ("senior-card", "王*"), ("pension-certification", "赵*华")]
    ids = []
    for number, (service, name) in enumerate(rows, start=1):
        item = new_item_id()
        summary = {"receipt_number": f"R07-20261123-{number:04d}", "service_id": service,
                   "created_at": "2026-11-23T09:00:00+08:00", "masked_name": name}
        parts.outbox.enqueue("submission", json.dumps({"submission_id": item}).encode(),
                             json.dumps(summary, ensure_ascii=False).encode(), item_id=item)
        ids.append(item)
    refusal = {"error": "validation_failed", "detail": "the answers do not match the form",
               "fields": [{"field": "answers.phone", "code": "pattern"}]}
    parts.outbox.mark_rejected(ids[1], "validation_failed|phone:pattern",
                               json.dumps(refusal).encode())
    parts.outbox.mark_needs_attention(ids[2], "idempotency_conflict")
    terminal = Terminal(parts, app)
    window = terminal.window
    visit, card, queue = terminal.visit, terminal.card, terminal.queue
    window.resize(*SIZE)
    window.show()
    terminal.start()
    staff_signs_in(app, terminal, data, out / f"staff-sign-in{suffix}.png")
    settle(app, lambda: "4" in queue.queue_button.text() or "2" in queue.queue_button.text())
    queue.open_queue()
    settle(app, lambda: queue.queue_page.table.rowCount() == len(rows))
    for _ in range(5):
        app.processEvents()
    window.grab().save(str(out / f"queue{suffix}.png"))
    # Staff correct the refused one: its question, the reason, a field of its own kind.
    queue.queue_page.table.selectRow(1)
    settle(app, queue.queue_page.correct_button.isEnabled)
    queue.queue_page.correct_button.click()
    settle(app, queue.correction_page.isVisible)
    window.grab().save(str(out / f"correction{suffix}.png"))
    queue.correction_page.cancelled.emit()
    settle(app, queue.queue_page.isVisible)
    queue.close_queue()
    card.on_reader_event(
        ReaderEvent(EventKind.ERROR, "Virtual PCD 00 00", error=ReaderError.ACCESS_KEY_NEEDED)
    )
    settle(app, card.mrz.isVisible)
    window.grab().save(str(out / f"mrz-entry{suffix}.png"))
    window.end_visit(EndReason.CANCELLED)
    visit.present_demo_card()  # a resident ID card whose photo no decoder is configured for
    settle(app, lambda: visit.services.photo is not None and bool(visit.services.photo.text()))
    settle(app, lambda: "…" not in visit.services.photo.text())  # type: ignore[union-attr]
    window.grab().save(str(out / f"services-staff{suffix}.png"))
    terminal.stop()  # deletes the window
    parts.close()
    app.processEvents()


def counter_shots(  # noqa: PLR0915 - one application at a counter, step by step
    app: QApplication, tmp: Path, catalogue: Path, out: Path, suffix: str
) -> None:
    """A window clerk's day: the one-page form (empty, then with a wrong answer), a material
    attached, the citizen's confirmation (present, then a relative with their own card, signed),
    and the outcome."""
    import dataclasses

    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    from tests.gui.test_visit import ime_commit

    platform = start_in_thread(tmp / "counter-platform.sqlite3", catalogue)
    data = tmp / "counter"
    config = Config(data_dir=data, platform_url=platform.base_url, mode=Mode.COUNTER,
                    terminal_id="C03", hall_name="本市政务服务中心", idle_timeout_s=3600)
    enrol(data, platform.base_url,
          TerminalRegistry(platform.db_path).issue_code(config.terminal_id).secret)
    parts = build_parts(config, demo=True, bundled_catalogue=catalogue)
    terminal = Terminal(parts, app)
    window, visit = terminal.window, terminal.visit
    window.resize(*SIZE)
    window.show()
    terminal.start()
    staff_signs_in(app, terminal, data, out / f"counter-sign-in{suffix}.png")
    settle(app, lambda: window.current_page() is visit.welcome)
    window.grab().save(str(out / f"counter-welcome{suffix}.png"))
    form, confirm, materials = visit.counter_form, visit.confirm, visit.materials
    if form is None or confirm is None or materials is None:
        raise RuntimeError("a counter terminal has the one-page form")
    visit.present_demo_card()
    settle(app, lambda: visit.session.step is Step.SERVICES)
    visit.services.service_buttons[0].click()
    settle(app, lambda: visit.session.step is Step.FORM and bool(form.editors))
    settle(app, lambda: "…" not in form.photo.text())
    window.grab().save(str(out / f"counter-form{suffix}.png"))
    QTest.keyClicks(form.editors["phone"].widget, "1381234")
    form.confirm.emit()
    settle(app, lambda: not visit.checking and form.summary.isVisible())
    window.grab().save(str(out / f"counter-form-error{suffix}.png"))
    phone = form.editors["phone"].widget
    phone.setFocus()
    QTest.keyClicks(phone, "5678")
    ime_commit(form.editors["address"].widget, "本市和平路12号3单元401室")
    for field, key_presses in (("reason", 1), ("collection", 1)):
        for _ in range(key_presses):
            QTest.keyClick(form.editors[field].widget, Qt.Key.Key_Down)
    QTest.keyClicks(form.editors["residence_start"].widget, "20250601")
    scan = tmp / "居住证明.pdf"
    scan.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\n%%EOF\n")
    materials.add_path(scan)
    settle(app, lambda: len(materials.materials) == 1)
    window.grab().save(str(out / f"counter-form-filled{suffix}.png"))
    form.confirm.emit()
    settle(app, lambda: visit.session.step is Step.CONFIRM)
    window.grab().save(str(out / f"counter-confirm{suffix}.png"))
    # Back: a relative applies for the applicant, with their own card.
    confirm.back.emit()
    settle(app, lambda: visit.session.step is Step.FORM)
    form.mode.setCurrentIndex(1)
    form.relation_box.setCurrentIndex(form.relation_box.findData("child"))
    agent = dataclasses.replace(visit.session.identity, name="李国强",  # type: ignore[type-var]
                                id_number="110101198001010010")
    visit.card_read(agent)
    window.grab().save(str(out / f"counter-form-agent{suffix}.png"))
    form.confirm.emit()
    settle(app, lambda: visit.session.step is Step.CONFIRM)
    pad = confirm.signature.pad
    for row in (0.35, 0.6):
        y = int(pad.height() * row)
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(int(pad.width() * 0.15), y))
        for step in range(1, 13):
            QTest.mouseMove(pad, QPoint(int(pad.width() * (0.15 + 0.05 * step)),
                                        y + (14 if step % 2 else -14)))
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                           QPoint(int(pad.width() * 0.75), y))
    settle(app, lambda: pad.has_signature)
    window.grab().save(str(out / f"counter-confirm-agent{suffix}.png"))
    confirm.submit_button.click()
    settle(app, lambda: visit.session.step is Step.DONE, timeout_s=20)
    window.grab().save(str(out / f"counter-done{suffix}.png"))
    terminal.stop()  # deletes the window
    parts.close()
    platform.stop()
    app.processEvents()


if __name__ == "__main__":
    sys.exit(main())

