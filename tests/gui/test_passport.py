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

pytestmark = pytest.mark.real_device

READER = "Virtual PCD 00 00"


@pytest.fixture(autouse=True)
def _stack() -> None:
    require_pcsc_stack()
    wait_until_empty([READER])  # pcscd has noticed the previous test's card leave


def type_mrz(qtbot: QtBot, window: object, number: str, birth: str, expiry: str) -> None:
    panel = window.mrz  # type: ignore[attr-defined]
    panel.number.setText(number)
    panel.birth.setText(birth)
    panel.expiry.setText(expiry)
    qtbot.mouseClick(panel.read_button, Qt.MouseButton.LeftButton)


def test_counter_staff_type_the_mrz_and_the_chip_is_read(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_readers=("pcsc",))
    window = terminal.window
    doc = Document(photo=sample_jpeg())
    with VirtualCard(EmrtdChip(doc), port=vpcd_port(READER)):
        qtbot.waitUntil(window.mrz.isVisible, timeout=8000)
        assert "机读区" in window.mrz.error.text()
        type_mrz(qtbot, window, doc.document_number, "90011", doc.expiry)  # five digits
        assert "六位数字" in window.mrz.error.text()
        assert terminal.parts.access_keys(READER) is None  # nothing was tried
        type_mrz(qtbot, window, doc.document_number, "900116", doc.expiry)  # a day out
        qtbot.waitUntil(lambda: "不符" in window.mrz.error.text(), timeout=8000)
        type_mrz(qtbot, window, doc.document_number, doc.birth, doc.expiry)
        wait_step(qtbot, window, Step.SERVICES, timeout=8000)
        identity = window.session.identity
        assert isinstance(identity, MrtdIdentity)
        assert identity.id_number == doc.document_number
        # what staff typed is gone from the screen and from memory
        assert not window.mrz.isVisible()
        assert window.mrz.number.text() == window.mrz.birth.text() == ""
        assert terminal.parts.access_keys(READER) is None
        assert doc.document_number not in " ".join(visible_texts(window))
        # staff see the chip's face image beside the greeting
        photo = window.services.photo
        assert photo is not None
        qtbot.waitUntil(lambda: not photo.pixmap().isNull(), timeout=5000)
        assert photo.pixmap().width() <= 204 and photo.pixmap().height() <= 252


def test_a_kiosk_sends_a_passport_holder_to_the_counter(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.KIOSK, card_readers=("pcsc",))
    window = terminal.window
    with VirtualCard(EmrtdChip(Document()), port=vpcd_port(READER)):
        qtbot.waitUntil(lambda: "请使用居民身份证" in window.welcome.message.text(), timeout=8000)
        assert not window.mrz.isVisible()
        assert window.session.identity is None
