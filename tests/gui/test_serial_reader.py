"""A resident ID card on a GA/T 467 reader (a pseudo-terminal speaking the protocol), through
the settings, the reader thread and the window to the greeting and the prefilled form."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from kiosk.config import ConfigError, Mode, from_mapping
from kiosk.session import Step
from tests.fixtures.gat467_sim import PERSON, Gat467Simulator
from tests.gui.conftest import MakeTerminal, visible_texts
from tests.gui.test_visit import wait_step

pytestmark = pytest.mark.real_device


def test_a_card_on_the_serial_reader_starts_the_visit(
    qtbot: QtBot, make_terminal: MakeTerminal, gat467_sim: Gat467Simulator
) -> None:
    terminal = make_terminal(card_readers=(f"serial:{gat467_sim.path}",))
    window = terminal.window
    visit = terminal.visit
    gat467_sim.present()
    wait_step(qtbot, terminal, Step.SERVICES, timeout=5000)
    identity = visit.session.identity
    assert identity is not None
    assert identity.id_number == PERSON.id_number and identity.name == PERSON.name
    assert identity.source == "ID card reader"
    shown = " ".join(visible_texts(window))
    assert PERSON.id_number not in shown and PERSON.name not in shown  # masked greeting
    gat467_sim.remove()  # a kiosk ends the visit when the card goes
    wait_step(qtbot, terminal, Step.WELCOME, timeout=5000)
    assert visit.session.identity is None


def test_a_counter_keeps_the_visit_when_the_card_goes(
    qtbot: QtBot, make_terminal: MakeTerminal, gat467_sim: Gat467Simulator
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_readers=(f"serial:{gat467_sim.path}",))
    visit, card = terminal.visit, terminal.card
    gat467_sim.present()
    wait_step(qtbot, terminal, Step.SERVICES, timeout=5000)
    gat467_sim.remove()
    qtbot.waitUntil(card.card_banner.isVisible, timeout=5000)
    assert visit.session.step is Step.SERVICES


@pytest.mark.parametrize(
    "entries",
    [["floppy"], ["sdt"], ["pcsc:/dev/x"], "serial"],
    ids=["unknown", "sdt-without-library", "pcsc-with-location", "not-a-list"],
)
def test_reader_settings_are_checked_when_loaded(entries: object) -> None:
    with pytest.raises(ConfigError):
        from_mapping({"card_readers": entries})


def test_reader_settings_accept_every_backend() -> None:
    entries = ["serial", "serial:/dev/ttyUSB0", "sdt:/opt/r/libsdtapi.so", "pcsc", "simulated"]
    assert from_mapping({"card_readers": entries}).card_readers == tuple(entries)
