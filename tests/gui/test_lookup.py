"""Looking an application up at the real terminal: a receipt number typed as a USB scanner types
it, the receipt's link, the demo ID card, the platform away (the last known status and its age);
the rating of a case and at the end of a visit, queued and delivered once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kiosk.i18n import current_language
from kiosk.lookup import Case, status_words
from kiosk.ratings import RATING_KIND, RatingChoice
from kiosk.session import EndReason
from offline_queue.outbox import State
from refplatform.server import RunningPlatform, start_in_thread
from refplatform.storage import Storage
from tests.fixtures.platform import DEMO_CATALOGUE, demo_submission
from tests.gui.conftest import MakeTerminal, closed_port_url, visible_texts
from ui.app import Terminal
from ui.audit import Context, audit_page
from ui.lookup import LookupJourney
from ui.rating import FaceButton
from ui.screens import DonePage

WAIT_MS = 10_000


@pytest.fixture
def platform_server(tmp_path: Path) -> Iterator[RunningPlatform]:
    """The platform of make_terminal, answering POST /api/v1/lookup."""
    with start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE) as running:
        yield running


def with_lookup(terminal: Terminal) -> LookupJourney:
    """The lookup journey as ui/app.py wires it into the terminal (the card journey hands it a
    card read while its pages are up, ui/card.py)."""
    return terminal.lookup


def file_case(
    terminal: Terminal, receipt: str, id_number: str = "11010519491231002X"
) -> str:
    body = demo_submission()
    body["receipt_number"] = receipt
    body["terminal_id"] = terminal.parts.config.terminal_id
    body["applicant"]["id_number"] = id_number
    body["answers"]["id_number"] = id_number
    outcome = terminal.parts.client.submit(str(body["submission_id"]), body)
    assert outcome.delivered, outcome
    return str(body["submission_id"])


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isVisible(), widget.accessibleName()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def scan(qtbot: QtBot, journey: LookupJourney, line: str) -> None:
    """What a USB scanner does: the line typed into the focused field, then Enter."""
    field = journey.entry_page.field
    qtbot.waitUntil(field.hasFocus, timeout=WAIT_MS)  # once the window is active
    qtbot.keyClicks(field, line)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def open_lookup(qtbot: QtBot, terminal: Terminal, journey: LookupJourney) -> None:
    qtbot.waitUntil(journey.way_in.isVisible, timeout=WAIT_MS)  # shown with the welcome page
    click(qtbot, journey.way_in)
    assert terminal.window.current_page() is journey.entry_page


def shown(terminal: Terminal, journey: LookupJourney) -> bool:
    return terminal.window.current_page() is journey.results_page


def test_a_scanned_receipt_number_shows_the_case_and_its_history(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    terminal = make_terminal()
    journey = with_lookup(terminal)
    file_case(terminal, "K01-20261123-0007")
    assert journey.way_in.parent() is not None  # on the welcome page
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "K01-20261123-0007")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    page = journey.results_page
    assert page.status_texts() == [status_words("received")]
    texts = visible_texts(page)
    assert any("K01-20261123-0007" in t for t in texts)
    assert any("居住证" in t for t in texts)  # the service by its name
    assert terminal.window.grab().save(str(tmp_path / "results.png"))  # to look at
    # A new status on the platform is what the next lookup shows.
    click(qtbot, page.again_button)
    scan(qtbot, journey, "k01-20261123-0099")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    assert page.status_texts() == []
    assert any("没有查到" in t for t in visible_texts(page))


def test_the_receipts_link_and_a_mistyped_line(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    journey = with_lookup(terminal)
    submission_id = file_case(terminal, "K01-20261123-0007")
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "hello")
    assert journey.entry_page.error.isVisible()
    assert "回执编号" in journey.entry_page.error.text()
    journey.entry_page.field.clear()
    scan(qtbot, journey, f"{platform_server.base_url}/track/{submission_id}")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    assert journey.results_page.status_texts() == [status_words("received")]


def test_the_demo_card_on_the_lookup_page_shows_its_holders_cases_and_starts_no_visit(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    journey = with_lookup(terminal)
    people = terminal.parts.demo_people
    file_case(terminal, "K01-20261123-0001", people[0].id_number)
    file_case(terminal, "K01-20261123-0002", people[0].id_number)
    open_lookup(qtbot, terminal, journey)
    terminal.visit.present_demo_card()
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    assert journey.results_page.status_texts() == [status_words("received")] * 2
    assert terminal.visit.session.identity is None  # no visit began
    number = people[0].id_number
    assert not any(number in t for t in visible_texts(terminal.window))


def test_offline_the_last_known_status_and_its_age(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    journey = with_lookup(terminal)
    assert journey._desk is not None
    journey._desk._cache.remember(
        [Case("K01-20261120-0003", "residence-permit", "in_review", time.time() - 3 * 86400 - 60)]
    )
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "K01-20261120-0003")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    texts = visible_texts(journey.results_page)
    assert journey.results_page.status_texts() == ["正在审核"]
    assert "最后更新：3 天前" in texts
    assert any("暂时无法连接" in t for t in texts)
    assert terminal.window.grab().save(str(tmp_path / "offline.png"))
    # By card the platform is needed: the citizen is told to use the receipt number.
    click(qtbot, journey.results_page.again_button)
    terminal.visit.present_demo_card()
    qtbot.waitUntil(lambda: journey.entry_page.error.text() != "正在查询…", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "回执编号" in journey.entry_page.error.text(), timeout=WAIT_MS)
    # Leaving wipes what was shown.
    terminal.window.end_visit(EndReason.FINISHED)
    assert journey.entry_page.field.text() == ""
    assert journey.results_page.items == []
    assert not journey.active


def test_a_case_rated_on_the_results_page_reaches_the_platform_once(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    terminal.window.resize(1920, 1080)  # the case and its rating on one page
    journey = with_lookup(terminal)
    submission_id = file_case(terminal, "K01-20261123-0007")
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "K01-20261123-0007")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    [item] = journey.results_page.items
    assert item.rating is not None
    qtbot.waitUntil(item.rating.isVisible, timeout=WAIT_MS)
    faces = item.rating.faces.buttons
    assert all(isinstance(f, FaceButton) and not f.icon().isNull() for f in faces.values())
    click(qtbot, faces["very_satisfied"])
    storage = Storage(platform_server.db_path)
    qtbot.waitUntil(lambda: storage.rating(submission_id) is not None, timeout=WAIT_MS)
    rows = [i for i in terminal.parts.outbox.items() if i.kind == RATING_KIND]
    assert len(rows) == 1
    qtbot.waitUntil(
        lambda: terminal.parts.outbox.state_of(rows[0].id) is State.DELIVERED, timeout=WAIT_MS
    )
    assert storage.rating(submission_id)[0] == "very_satisfied"  # type: ignore[index]


def test_the_done_page_asks_why_and_about_a_call_back_for_an_unhappy_face(
    qtbot: QtBot, tmp_path: Path
) -> None:
    page = DonePage()
    qtbot.addWidget(page)
    page.resize(1280, 900)
    page.show()
    page.show_done(
        accepted_text="ok", receipt_number="K01-20261123-0007", notice="", printed=""
    )
    got: list[RatingChoice] = []
    page.rated.connect(got.append)
    assert isinstance(page.rating_buttons["dissatisfied"], FaceButton)
    click(qtbot, page.rating_buttons["dissatisfied"])
    assert got == []
    follow = page.rating_follow_up
    assert follow.isVisible()
    assert page.grab().save(str(tmp_path / "done-reasons.png"))
    click(qtbot, follow.reason_buttons["unclear_materials"])
    click(qtbot, follow.yes_button)
    assert got == [RatingChoice("dissatisfied", "unclear_materials", True)]
    assert page.rating_thanks.isVisible()
    # A happy face is sent at once.
    page.show_done(accepted_text="ok", receipt_number="K01-20261123-0008", notice="", printed="")
    click(qtbot, page.rating_buttons["satisfied"])
    assert got[-1] == RatingChoice("satisfied")


def test_the_done_pages_rating_is_queued_for_the_visits_submission(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    journey = with_lookup(terminal)

    class Result:
        submission_id = str(uuid.uuid4())
        receipt_number = "K01-20261123-0011"
        service_name = "居住证申领"
        delivered = False

    journey.visit_submitted(Result())  # type: ignore[arg-type]
    journey.visit_rated(RatingChoice("very_dissatisfied", "long_wait", False))
    outbox = terminal.parts.outbox
    qtbot.waitUntil(
        lambda: any(i.kind == RATING_KIND for i in outbox.items()), timeout=WAIT_MS
    )
    assert journey._desk is not None
    qtbot.waitUntil(
        lambda: journey._desk is not None
        and journey._desk._cache.get("K01-20261123-0011") is not None,
        timeout=WAIT_MS,
    )
    cached = journey._desk._cache.get("K01-20261123-0011")
    assert cached is not None and cached.status == "waiting_upload"


def test_the_lookup_pages_keep_the_accessibility_rules(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(idle_timeout_s=3600)
    journey = with_lookup(terminal)
    file_case(terminal, "K01-20261123-0007")
    window = terminal.window
    found = []
    for size in ((1080, 1920), (1280, 1024), (1920, 1080)):
        window.resize(*size)
        qtbot.waitUntil(lambda size=size: window.size() == QSize(*size), timeout=WAIT_MS)
        for language in ("zh_CN", "en"):
            if current_language() != language:
                click(qtbot, window.language_button)
            open_lookup(qtbot, terminal, journey)
            where = Context(page="LookupPage", size=str(size), language=language)
            found += audit_page(journey.entry_page, window, context=where, panel=QSize(*size))
            scan(qtbot, journey, "K01-20261123-0007")
            qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
            where = Context(page="ResultsPage", size=str(size), language=language)
            found += audit_page(journey.results_page, window, context=where, panel=QSize(*size))
            click(qtbot, journey.results_page.back_button)
    # The header's own buttons are the shell's (audited with it), not these pages'.
    found = [v for v in found if v.page != "shell"]
    assert found == [], "\n".join(str(v) for v in found)
