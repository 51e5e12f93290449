"""The service guide without a card, through the real terminal: the list, a guide read page by
page, the materials as a QR code a phone can read, and the ways out (a card, idle, the start)."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kiosk.i18n import current_language
from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import wait_step
from ui.app import Terminal
from ui.audit import Context, audit_page
from ui.browse import QR_MAX_MODULES, QR_MIN_PX, QR_QUIET_MODULES, qr_modules

WAIT_MS = 10_000


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isVisible(), widget.accessibleName()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_guide(qtbot: QtBot, terminal: Terminal, index: int = 0) -> None:
    browse = terminal.browse
    click(qtbot, terminal.visit.welcome.browse_button)
    assert terminal.window.current_page() is browse.list_page
    click(qtbot, browse.list_page.service_buttons[index])
    assert terminal.window.current_page() is browse.guide_page


def open_materials(qtbot: QtBot, terminal: Terminal) -> None:
    page = terminal.browse.materials_page
    click(qtbot, terminal.browse.guide_page.start_button)
    qtbot.waitUntil(lambda: terminal.window.current_page() is page, timeout=WAIT_MS)
    assert page.code.has_code()


def decode(image: QImage) -> list[zxingcpp.Barcode]:
    """What a phone would read off the screen."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, "PNG")
    picture = Image.open(io.BytesIO(bytes(buffer.data().data()))).convert("L")
    return list(zxingcpp.read_barcodes(picture))


def test_a_guide_read_page_by_page_and_its_materials_taken_away_as_a_qr_code(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    terminal.window.resize(1080, 1920)  # the portrait panel: the guide takes more than a page
    browse, visit, window = terminal.browse, terminal.visit, terminal.window
    service = visit.session.catalogue.services[0]
    zh = {k: v["zh_CN"] for k, v in (("name", service.name), ("fee", service.guide.fee))}
    click(qtbot, visit.welcome.browse_button)
    assert window.current_page() is browse.list_page
    assert browse.list_page.title.text() == "办事指南"
    assert "居住证申领" in terminal.voice.spoken[-1]
    click(qtbot, browse.list_page.service_buttons[0])
    guide = browse.guide_page
    assert window.current_page() is guide
    assert guide.title.text() == zh["name"]
    assert "适用对象" in terminal.voice.spoken[-1]
    # Every page of the guide, read aloud as it is turned; the fee is on one of them.
    heard = [terminal.voice.spoken[-1]]
    turns = 0
    while guide.sections.more_button.isVisible() and guide.sections.more_button.isEnabled():
        click(qtbot, guide.sections.more_button)
        heard.append(terminal.voice.spoken[-1])
        turns += 1
        assert turns < 10
    assert any(zh["fee"] in said for said in heard)
    assert any(service.department["zh_CN"] in said for said in heard)
    # Browsing is not a visit: nothing started, nobody known.
    assert visit.session.step is Step.WELCOME and not visit.session.active

    open_materials(qtbot, terminal)
    page = browse.materials_page
    assert page.code.width() >= QR_MIN_PX and page.code.height() >= QR_MIN_PX
    # The quiet zone: the code's outer rows and columns are white all round.
    code = page.code.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    module = code.width() // len(page.code._modules)
    quiet = QR_QUIET_MODULES * module
    for inset in range(quiet):
        for along in range(0, code.width(), 7):
            for x, y in ((along, inset), (inset, along), (along, code.height() - 1 - inset)):
                assert code.pixelColor(x, y).lightness() == 255
    [found] = decode(window.grab().toImage())  # off the screen as shown, page and all
    assert found.ec_level == "H"
    assert zh["name"] in found.text
    for material in service.guide.materials:
        assert material["zh_CN"] in found.text
    said = terminal.voice.spoken[-1]
    assert "扫描二维码" in said and service.guide.materials[0]["zh_CN"] in said

    # In English the code holds the English list.
    click(qtbot, window.language_button)
    assert current_language() == "en"
    first = service.guide.materials[0]["en"]
    qtbot.waitUntil(lambda: first in _decoded_text(window), timeout=WAIT_MS)
    text = _decoded_text(window)
    assert service.name["en"] in text
    assert all(m["en"] in text for m in service.guide.materials)

    click(qtbot, page.list_button)
    assert window.current_page() is browse.list_page
    click(qtbot, browse.list_page.service_buttons[1])
    assert guide.title.text() == visit.session.catalogue.services[1].name["en"]
    click(qtbot, guide.back_button)
    assert window.current_page() is browse.list_page
    click(qtbot, browse.list_page.end_button)
    assert window.current_page() is visit.welcome
    assert not browse.browsing
    assert browse.list_page.service_buttons == []


def _decoded_text(window: QWidget) -> str:
    return " ".join(found.text for found in decode(window.grab().toImage()))


def test_a_card_presented_while_browsing_starts_the_visit(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    browse = terminal.browse
    open_guide(qtbot, terminal, index=1)
    open_materials(qtbot, terminal)
    reader, people = terminal.parts.demo_reader, terminal.parts.demo_people
    assert reader is not None and people
    reader.present(people[0])  # the card on the reader, as the card journey hears it
    wait_step(qtbot, terminal, Step.SERVICES)
    assert terminal.visit.session.active
    assert not browse.browsing
    assert browse.guide_page.title.text() == ""
    assert not browse.materials_page.code.has_code()
    assert not browse.idle_banner.isVisible()
    strays = [
        type(w).__name__
        for w in QApplication.topLevelWidgets()
        if w is not terminal.window and w.parent() is None
    ]
    assert strays == []  # every widget the guide made has the shell above it


def test_idle_warns_then_ends_the_browsing(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal(idle_timeout_s=0.3, idle_warning_s=2.0)
    browse, window = terminal.browse, terminal.window
    open_guide(qtbot, terminal)
    qtbot.waitUntil(browse.idle_banner.isVisible, timeout=WAIT_MS)
    assert "秒" in browse.idle_text.text()
    click(qtbot, browse.idle_button)  # "I need more time"
    assert not browse.idle_banner.isVisible()
    assert window.current_page() is browse.guide_page
    terminal.window.set_text_step(2)  # then nobody answers the second warning
    qtbot.waitUntil(browse.idle_banner.isVisible, timeout=WAIT_MS)
    wait_step(qtbot, terminal, Step.WELCOME, timeout=WAIT_MS)
    assert not browse.browsing
    assert not browse.idle_banner.isVisible()
    assert browse.guide_page.title.text() == ""
    assert window.text_step == 0  # the next person starts with the terminal's own look
    assert not terminal.visit.session.active


def test_the_guide_pages_keep_the_accessibility_rules(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(idle_timeout_s=3600)
    window, browse = terminal.window, terminal.browse
    found = []
    for size in ((1080, 1920), (1280, 1024)):
        window.resize(*size)
        qtbot.waitUntil(lambda size=size: window.size() == QSize(*size), timeout=WAIT_MS)
        for language in ("zh_CN", "en"):
            if current_language() != language:
                click(qtbot, window.language_button)
            open_guide(qtbot, terminal)
            guide_said = browse.guide_page.spoken_text()
            assert browse.guide_page.title.text() in guide_said
            open_materials(qtbot, terminal)
            for page in (browse.materials_page,):
                where = Context(page=type(page).__name__, size=str(size), language=language)
                found += audit_page(page, window, context=where, panel=QSize(*size))
            click(qtbot, browse.materials_page.list_button)
            where = Context(page="BrowseListPage", size=str(size), language=language)
            found += audit_page(browse.list_page, window, context=where, panel=QSize(*size))
            click(qtbot, browse.list_page.service_buttons[0])
            where = Context(page="BrowseGuidePage", size=str(size), language=language)
            found += audit_page(browse.guide_page, window, context=where, panel=QSize(*size))
            click(qtbot, browse.guide_page.back_button)
            click(qtbot, browse.list_page.end_button)
    assert found == []


def test_a_list_too_long_for_high_error_correction_gets_a_lower_level_or_no_code() -> None:
    usual = qr_modules("居住证申领\n所需材料：\n1. 本人居民身份证原件")
    long = qr_modules("材" * 400)  # at H this would take 125 modules a side or more
    assert len(usual) <= QR_MAX_MODULES
    assert len(qr_modules_at_h("材" * 400)) > QR_MAX_MODULES
    assert len(long) < len(qr_modules_at_h("材" * 400))
    with pytest.raises(ValueError, match="too much text"):
        qr_modules("材" * 2000)  # more than any QR code holds


def qr_modules_at_h(text: str) -> list[list[bool]]:
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_H, border=4)
    code.add_data(text.encode("utf-8"))
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix
