"""Nothing personal is left behind: after whole visits through the real terminal, no file of the
data directory, no log line, no text on the screen and nothing the voice guide keeps holds the
citizen's name, ID number, phone number or address in plain text.

Every visit runs with every logger at DEBUG (pytest's capture and a log file outside the data
directory). The outbox keeps what is still to be sent sealed, so searching its raw bytes (the
database, its write-ahead log and shared memory) for the plain values must find nothing either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pdfminer.high_level import extract_text
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from refplatform.server import RunningPlatform
from tests.gui.conftest import ROOT, MakeTerminal, closed_port_url, visible_texts
from tests.gui.test_visit import (
    ADDRESS,
    PERSON_ID,
    PERSON_NAME,
    PHONE,
    answer_residence_permit,
    ime_commit,
    open_form,
    submit,
    type_digits,
    wait_step,
)
from ui.app import Terminal

IDENTITIES = ROOT / "assets" / "demo" / "identities.json"


def _first_person() -> dict[str, str]:
    people = json.loads(IDENTITIES.read_text(encoding="utf-8"))
    first = people[0]
    # The helpers of test_visit present the first demo person; the search is only as good as
    # this match.
    assert (first["name"], first["id_number"]) == (PERSON_NAME, PERSON_ID)
    return {str(k): str(v) for k, v in first.items() if v is not None}


PERSON = _first_person()
# What the citizen is and what they type. The card's own address is personal too.
PERSONAL: dict[str, str] = {
    "full name": PERSON["name"],
    "ID number": PERSON["id_number"],
    "phone": PHONE,
    "typed address": ADDRESS,
    "card address": PERSON["address"],
}


def byte_forms(value: str) -> dict[str, bytes]:
    """How a value can sit in a file: UTF-8, UTF-16-LE, and escaped the way JSON (ensure_ascii)
    or a printed bytes object writes it."""
    return {
        "utf-8": value.encode("utf-8"),
        "utf-16-le": value.encode("utf-16-le"),
        "json-escaped": json.dumps(value)[1:-1].encode("ascii"),
        "bytes-repr": repr(value.encode("utf-8"))[2:-1].encode("ascii"),
    }


def text_forms(value: str) -> dict[str, str]:
    return {name: form.decode("latin-1") for name, form in byte_forms(value).items()} | {
        "text": value
    }


@dataclass(frozen=True)
class Hit:
    where: str
    what: str
    form: str


def search_files(folder: Path) -> list[Hit]:
    """Every personal value, in every form, in every byte of every file under folder (and in
    the text of PDF files, whose streams are compressed)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files, f"nothing to search in {folder}"
    hits = []
    for path in files:
        data = path.read_bytes()
        texts = [data]
        if data.startswith(b"%PDF"):
            texts.append(extract_text(str(path)).encode("utf-8"))
        for what, value in PERSONAL.items():
            for form, needle in byte_forms(value).items():
                if any(needle in text for text in texts):
                    hits.append(Hit(str(path.relative_to(folder)), what, form))
    return hits


def search_lines(lines: list[str], where: str) -> list[Hit]:
    hits = []
    for number, line in enumerate(lines):
        for what, value in PERSONAL.items():
            for form, needle in text_forms(value).items():
                if needle in line:
                    hits.append(Hit(f"{where}:{number}", what, form))
    return hits


@dataclass
class Logs:
    caplog: pytest.LogCaptureFixture
    file: Path
    handler: logging.FileHandler

    def lines(self) -> list[str]:
        """Every captured record as formatted (with its traceback) and as raw message and
        arguments, and every line of the log file."""
        self.handler.flush()
        lines = []
        for record in self.caplog.records:
            lines.append(self.handler.format(record))
            lines.append(str(record.msg))
            lines.append(repr(record.args))
        lines.extend(self.file.read_text(encoding="utf-8").splitlines())
        return lines

    def file_hits(self) -> list[Hit]:
        self.handler.flush()
        data = self.file.read_bytes()
        return [
            Hit(self.file.name, what, form)
            for what, value in PERSONAL.items()
            for form, needle in byte_forms(value).items()
            if needle in data
        ]


@pytest.fixture
def every_log(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, platform_server: RunningPlatform
) -> Iterator[Logs]:
    """Every logger at DEBUG, into pytest's capture and a file outside every data directory.

    Takes platform_server so that the platform's server has set its loggers up first.
    """
    caplog.set_level(logging.DEBUG)
    raised: dict[str, tuple[int, bool]] = {}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            raised[name] = (logger.level, logger.propagate)
            logger.setLevel(logging.DEBUG)
            logger.propagate = True  # a logger that keeps its records to itself is searched too
    folder = tmp_path / "logs"
    folder.mkdir()
    file = folder / "everything.log"
    handler = logging.FileHandler(file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    logging.root.addHandler(handler)
    try:
        yield Logs(caplog, file, handler)
    finally:
        logging.root.removeHandler(handler)
        handler.close()
        for name, (level, propagate) in raised.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate


# -- the visits ------------------------------------------------------------------------------------


def visit_delivered(qtbot: QtBot, make_terminal: MakeTerminal, data: Path) -> Terminal:
    terminal = make_terminal(data_dir=data)
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert result.delivered
    assert result.receipt_path is not None and result.receipt_path.is_relative_to(data)
    qtbot.mouseClick(terminal.visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    return terminal


def visit_offline(qtbot: QtBot, make_terminal: MakeTerminal, data: Path) -> Terminal:
    terminal = make_terminal(data_dir=data, platform_url=closed_port_url())
    terminal.parts.submitter._upload_wait_s = 0.5
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert not result.delivered
    assert terminal.parts.outbox.pending_count() == 1  # the submission waits on this disk
    qtbot.mouseClick(terminal.visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    return terminal


def _type_phone_and_address(qtbot: QtBot, terminal: Terminal) -> None:
    page = terminal.visit.question
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    # the answer is checked off the GUI thread before the next question comes
    qtbot.waitUntil(
        lambda: terminal.visit.session.current_question.field == "address", timeout=5000
    )
    page.line.setFocus()
    ime_commit(page.line, ADDRESS)
    assert page.line.text() == ADDRESS


def visit_card_pulled(qtbot: QtBot, make_terminal: MakeTerminal, data: Path) -> Terminal:
    terminal = make_terminal(data_dir=data)
    open_form(qtbot, terminal)
    _type_phone_and_address(qtbot, terminal)
    reader = terminal.parts.demo_reader
    assert reader is not None
    reader.remove()  # the citizen takes the card and walks away mid-form
    wait_step(qtbot, terminal, Step.WELCOME)
    assert terminal.visit.session.identity is None
    return terminal


def visit_idle(qtbot: QtBot, make_terminal: MakeTerminal, data: Path) -> Terminal:
    terminal = make_terminal(data_dir=data, idle_timeout_s=0.2, idle_warning_s=1.0)
    open_form(qtbot, terminal)
    _type_phone_and_address(qtbot, terminal)
    qtbot.waitUntil(terminal.window.idle_banner.isVisible, timeout=3000)
    wait_step(qtbot, terminal, Step.WELCOME, timeout=5000)  # nobody answered the warning
    assert terminal.visit.session.identity is None
    return terminal


Visit = Callable[[QtBot, MakeTerminal, Path], Terminal]
VISITS: dict[str, Visit] = {
    "delivered": visit_delivered,
    "offline": visit_offline,
    "card-pulled": visit_card_pulled,
    "idle": visit_idle,
}


@pytest.mark.parametrize("name", sorted(VISITS))
def test_a_whole_visit_leaves_nothing_personal_behind(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path, every_log: Logs, name: str
) -> None:
    data = tmp_path / f"data-{name}"
    terminal = VISITS[name](qtbot, make_terminal, data)
    window = terminal.window

    # The screen and the voice guide, once the visit has ended. The end forgets what was said;
    # what the voice keeps now is what the start screen said since, and nothing of the visit.
    shown = " ".join(visible_texts(window))
    assert [what for what, value in PERSONAL.items() if value in shown] == []
    start_screen = " ".join(visible_texts(terminal.visit.welcome))
    start_spoken = terminal.visit.welcome.spoken_text()  # the same words, read as sentences
    assert [
        said
        for said in window.voice.spoken
        if said not in start_screen and said != start_spoken
    ] == []
    said = " ".join(window.voice.spoken)
    assert [what for what, value in PERSONAL.items() if value in said] == []

    # Every byte under the data directory, with the outbox open as the terminal keeps it.
    assert terminal.parts.outbox.path.is_relative_to(data)
    assert every_log.file.is_relative_to(tmp_path / "logs")
    assert search_files(data) == []

    # Every log line of the visit, from every logger at DEBUG.
    assert len(every_log.caplog.records) > 0
    assert logging.getLogger("kiosk").getEffectiveLevel() == logging.DEBUG
    assert search_lines(every_log.lines(), "log") == []
    assert every_log.file_hits() == []

    # The control: the same searches find the values once they are written down.
    planted = data / "control.bin"
    planted.write_bytes(
        b"\0".join(
            value.encode(encoding)
            for value in PERSONAL.values()
            for encoding in ("utf-8", "utf-16-le")
        )
    )
    found = {(hit.what, hit.form) for hit in search_files(data) if hit.where.endswith(".bin")}
    for what in PERSONAL:
        assert {(what, "utf-8"), (what, "utf-16-le")} <= found
    logging.getLogger("tests.control").debug("planted: %s", " ".join(PERSONAL.values()))
    assert {hit.what for hit in search_lines(every_log.lines(), "log")} == set(PERSONAL)
    assert {hit.what for hit in every_log.file_hits()} == set(PERSONAL)
