"""A receipt that does not print: the citizen is told what happened, sees the receipt's QR code
on screen to photograph (the same signed link the paper would carry), hears it, and is told the
counter can print it; the submission itself is as it would have been."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from PySide6.QtCore import QBuffer, QEvent, QIODevice, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from kiosk.app import build_parts
from kiosk.catalogue_store import TERMINAL_KEYS_FILE, TerminalKeysStore
from kiosk.config import Config
from kiosk.i18n import set_language
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.receipt_token import ReceiptTokenError, token_from_link
from kiosk.session import Step
from kiosk.submissions import Submitter
from kiosk.terminal_auth import load_identity
from kiosk.trust import signing_keys
from offline_queue.outbox import State
from refplatform.server import RunningPlatform
from tests.fixtures.platform import enrol_terminal
from tests.gui.conftest import CATALOGUE, visible_texts
from tests.gui.test_visit import answer_residence_permit, open_form, submit, wait_step
from tests.unit.test_receipt_qr import Platform
from ui.app import Terminal
from ui.audit import audit_page
from ui.receipt_qr import MIN_SIDE_PX


class StuckPrinter:
    """A printer that answers every job with one status and keeps what it was asked to print."""

    def __init__(self, status: PrintStatus) -> None:
        self.status = status
        self.jobs: list[ReceiptDocument] = []

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        self.jobs.append(doc)
        return PrintResult(self.status, detail="test printer")


@pytest.fixture
def terminal_with(qtbot: QtBot, tmp_path: Path, platform_server: RunningPlatform) -> Iterator[Any]:
    """make_terminal's terminal (tests/gui/conftest.py) with the receipt printer given, its
    Submitter signing receipts with the enrolled key as kiosk/app.py builds it."""
    made: list[Terminal] = []

    def make(printer: StuckPrinter, size: tuple[int, int] = (1080, 1920)) -> Terminal:
        config = Config(
            data_dir=tmp_path / "data",
            platform_url=platform_server.base_url,
            hall_name="本市政务服务中心",
        )
        enrol_terminal(platform_server, config.data_dir, config.terminal_id)
        parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
        identity = load_identity(config.data_dir, config.platform_url)
        parts.submitter = Submitter(
            config=parts.config,
            outbox=parts.outbox,
            uploader=parts.sync,
            printer=printer,
            numbers=ReceiptNumbers(parts.config.counters_path, parts.config.terminal_id),
            seal_to=identity.enrolment.sealing_public_key(),
            receipt_key=identity.key,
            public_tracking=parts.catalogue_store.tracking_url,
        )
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        terminal = Terminal(parts, app)
        terminal.window.resize(*size)  # the portrait panel by default
        terminal.window.show()
        terminal.start()
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        terminal.stop()
        terminal.parts.close()


def decode(image: QImage) -> list[zxingcpp.Barcode]:
    """What a phone would read off the screen."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, "PNG")
    picture = Image.open(io.BytesIO(bytes(buffer.data().data()))).convert("L")
    return list(zxingcpp.read_barcodes(picture))


@pytest.mark.parametrize(
    "case",
    [
        (PrintStatus.PAPER_OUT, "打印机没有纸了"),
        (PrintStatus.OFFLINE, "打印机暂时不能使用"),
        (PrintStatus.ERROR, "打印机出了故障"),
    ],
)
def test_the_citizen_photographs_the_code_when_the_receipt_does_not_print(
    qtbot: QtBot, terminal_with: Any, tmp_path: Path, case: tuple[PrintStatus, str]
) -> None:
    status, told = case
    set_language("zh_CN")
    printer = StuckPrinter(status)
    terminal: Terminal = terminal_with(printer)
    # The catalogue refresh (with the platform's tracking page) has happened before a visit.
    qtbot.waitUntil(
        lambda: terminal.parts.catalogue_store.tracking_url() is not None, timeout=10000
    )
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    done = terminal.visit.done

    # Nothing about the submission changed: saved, uploaded, its receipt number shown.
    assert result.delivered and not result.printed
    assert terminal.parts.outbox.state_of(result.submission_id) is State.DELIVERED
    assert done.number.text() == result.receipt_number
    # It was asked to print the very link shown.
    [job] = printer.jobs
    assert job.qr_url == result.tracking_url
    platform_url = terminal.parts.config.platform_url
    assert result.tracking_url.startswith(f"{platform_url}/track?t=")

    # Told plainly, with the counter's reprint offered, and spoken.
    assert told in done.printed.text() and "窗口" in done.printed.text()
    spoken = done.spoken_text()
    assert told in spoken and "拍下这个二维码" in spoken

    # The code on screen: large, with its quiet zone, named for a screen reader.
    qr = done.receipt_qr
    assert qr.isVisible() and qr.code.isVisible()
    assert min(qr.code.width(), qr.code.height()) >= MIN_SIDE_PX
    assert qr.code.accessibleName() == "您的回执二维码"
    assert qr.code.accessibleName() in visible_texts(terminal.window)

    # Read off the page as a phone would, and checked offline with the published keys.
    qtbot.waitUntil(done.parts.settled, timeout=5000)  # laid out, as it is painted
    grabbed = terminal.window.grab().toImage()
    grabbed.save(str(tmp_path / "done.png"))
    codes = decode(grabbed)
    assert [c.text for c in codes] == [result.tracking_url]
    identity = load_identity(terminal.parts.config.data_dir, terminal.parts.config.platform_url)
    trusted = signing_keys(identity.enrolment.catalogue_keys().values())
    keys = TerminalKeysStore(tmp_path / TERMINAL_KEYS_FILE, trusted)
    client = Platform(platform_url, auth=identity.auth())
    try:
        keys.refresh(client)
    finally:
        client.close()
    claim = keys.current().verify(token_from_link(codes[0].text))
    assert claim.receipt_number == result.receipt_number
    assert claim.submission_id == result.submission_id
    token = token_from_link(codes[0].text)
    changed = token[:20] + ("B" if token[20] != "B" else "C") + token[21:]
    with pytest.raises(ReceiptTokenError):
        keys.current().verify(changed)


def test_a_printed_receipt_shows_no_code(qtbot: QtBot, terminal_with: Any) -> None:
    set_language("zh_CN")
    terminal: Terminal = terminal_with(StuckPrinter(PrintStatus.OK))
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert result.printed
    done = terminal.visit.done
    assert not done.receipt_qr.isVisible()
    assert "拍下这个二维码" not in done.spoken_text()
    assert decode(terminal.window.grab().toImage()) == []


@pytest.mark.parametrize(
    "case",
    [
        ((1920, 1080), "en", "not working right now"),
        ((1280, 1024), "zh_CN", "打印机暂时不能使用"),
        ((1080, 1920), "en", "not working right now"),
    ],
)
def test_the_code_is_on_the_first_page_of_a_panel(
    qtbot: QtBot, terminal_with: Any, tmp_path: Path, case: tuple[tuple[int, int], str, str]
) -> None:
    size, language, told = case
    set_language(language)
    terminal: Terminal = terminal_with(StuckPrinter(PrintStatus.OFFLINE), size)
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    done = terminal.visit.done
    qtbot.waitUntil(done.parts.settled, timeout=5000)
    assert told in done.receipt_qr.problem.text()
    # the code is on the first page, with what happened and what it is for
    assert done.receipt_qr in done.parts.visible_items() and done.parts.page() == 0
    # the layouts asked for are done first, as they are before the next frame is painted (a
    # grab between the two showed the page half laid out)
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    grabbed = terminal.window.grab().toImage()
    grabbed.save(str(tmp_path / f"done-{size[0]}x{size[1]}.png"))
    assert [c.text for c in decode(grabbed)] == [result.tracking_url]
    # and the page keeps the accessibility rules (type size, contrast, targets, names, fit)
    violations = audit_page(done, terminal.window, image=grabbed)
    assert violations == [], violations


@pytest.mark.parametrize(
    "case",
    [
        (PrintStatus.PAPER_NEAR_END, "纸快用完了", True),
        (PrintStatus.PAPER_OUT, "打印机缺纸", False),
        (PrintStatus.OK, "", True),
    ],
)
def test_staff_are_told_when_the_printer_needs_them(
    qtbot: QtBot, terminal_with: Any, case: tuple[PrintStatus, str, bool]
) -> None:
    status, words, printed = case
    set_language("zh_CN")
    terminal: Terminal = terminal_with(StuckPrinter(status))
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert result.printed is printed
    window = terminal.window
    assert not window.staff_banner.isVisible()  # the citizen's page keeps its room
    qtbot.mouseClick(terminal.visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    if words:
        qtbot.waitUntil(window.staff_banner.isVisible, timeout=5000)
        assert words in window.staff_text.text()
    else:
        assert not window.staff_banner.isVisible()
