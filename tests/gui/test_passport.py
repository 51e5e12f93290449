"""A chip passport on the real PC/SC stack, through the window: counter staff type the MRZ data,
a kiosk sends the holder to a counter."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from devices.cards.mrz import MrtdIdentity
from kiosk.config import Mode
from kiosk.session import Step
from tests.fixtures.emrtd_card import Document, EmrtdChip, VirtualCard, sample_jpeg
from tests.fixtures.pcsc import require_pcsc_stack, vpcd_port, wait_until_empty
from tests.gui.conftest import MakeTerminal, visible_texts
from tests.gui.test_visit import wait_step
from ui.app import Terminal

pytestmark = pytest.mark.real_device

READER = "Virtual PCD 00 00"


@pytest.fixture(autouse=True)
def _stack() -> None:
    require_pcsc_stack()
    wait_until_empty([READER])  # pcscd has noticed the previous test's card leave


def type_mrz(qtbot: QtBot, terminal: Terminal, number: str, birth: str, expiry: str) -> None:
    panel = terminal.card.mrz
    panel.number.setText(number)
    panel.birth.setText(birth)
    panel.expiry.setText(expiry)
    qtbot.mouseClick(panel.read_button, Qt.MouseButton.LeftButton)


def test_counter_staff_type_the_mrz_and_the_chip_is_read(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_readers=("pcsc",))
    window = terminal.window
    visit, card = terminal.visit, terminal.card
    doc = Document(photo=sample_jpeg())
    with VirtualCard(EmrtdChip(doc), port=vpcd_port(READER)):
        qtbot.waitUntil(card.mrz.isVisible, timeout=8000)
        assert "机读区" in card.mrz.error.text()
        type_mrz(qtbot, terminal, doc.document_number, "90011", doc.expiry)  # five digits
        assert "六位数字" in card.mrz.error.text()
        assert terminal.parts.access_keys(READER) is None  # nothing was tried
        type_mrz(qtbot, terminal, doc.document_number, "900116", doc.expiry)  # a day out
        qtbot.waitUntil(lambda: "不符" in card.mrz.error.text(), timeout=8000)
        type_mrz(qtbot, terminal, doc.document_number, doc.birth, doc.expiry)
        wait_step(qtbot, terminal, Step.SERVICES, timeout=8000)
        identity = visit.session.identity
        assert isinstance(identity, MrtdIdentity)
        assert identity.id_number == doc.document_number
        # what staff typed is gone from the screen and from memory
        assert not card.mrz.isVisible()
        assert card.mrz.number.text() == card.mrz.birth.text() == ""
        assert terminal.parts.access_keys(READER) is None
        assert doc.document_number not in " ".join(visible_texts(window))
        # staff see the chip's face image beside the greeting
        photo = visit.services.photo
        assert photo is not None
        qtbot.waitUntil(lambda: not photo.pixmap().isNull(), timeout=5000)
        assert photo.pixmap().width() <= 204 and photo.pixmap().height() <= 252


def test_a_kiosk_sends_a_passport_holder_to_the_counter(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.KIOSK, card_readers=("pcsc",))
    visit, card = terminal.visit, terminal.card
    with VirtualCard(EmrtdChip(Document()), port=vpcd_port(READER)):
        qtbot.waitUntil(lambda: "请使用居民身份证" in visit.welcome.message.text(), timeout=8000)
        assert not card.mrz.isVisible()
        assert visit.session.identity is None
