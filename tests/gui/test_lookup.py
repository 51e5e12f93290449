"""Looking an application up at the real terminal: a receipt number typed as a USB scanner types
it, the receipt's link, the demo ID card, the platform away (the last known status and its age);
the rating of a case and at the end of a visit, queued and delivered once."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from devices.readers.base import EventKind, ReaderEvent
from kiosk.i18n import current_language
from kiosk.lookup import Case, status_words
from kiosk.ratings import RATING_KIND, RatingChoice
from kiosk.receipt_token import ReceiptClaim, TerminalKeys, make_token, tracking_link
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
    card read while its pages are up, and the card taken away, ui/card.py)."""
    journey = terminal.lookup
    terminal.card.set_lookup(journey.take_card, journey.card_removed)
    return journey


class PublishedKeys:
    """The terminals' published keys (kiosk.catalogue_store.TerminalKeysStore's current)."""

    def __init__(self, keys: TerminalKeys) -> None:
        self.keys = keys

    def current(self) -> TerminalKeys:
        return self.keys


def receipt_link(
    terminal: Terminal, base_url: str, receipt: str, submission_id: str, key: Ed25519PrivateKey
) -> str:
    """The code printed on a receipt: the tracking address with the token signed by key."""
    claim = ReceiptClaim(
        receipt,
        submission_id,
        "residence-permit",
        dt.datetime(2026, 11, 23, 14, 32, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        terminal.parts.config.terminal_id,
    )
    return tracking_link(f"{base_url}/track", make_token(claim, key))


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
    people = terminal.parts.demo_people
    submission_id = file_case(terminal, "K01-20261123-0007", people[0].id_number)
    open_lookup(qtbot, terminal, journey)
    terminal.visit.present_demo_card()  # the holder's own card: their case may be rated
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
    assert got == [RatingChoice("dissatisfied")]  # kept, should the page close before the answer
    follow = page.rating_follow_up
    assert follow.isVisible()
    assert page.grab().save(str(tmp_path / "done-reasons.png"))
    click(qtbot, follow.reason_buttons["unclear_materials"])
    click(qtbot, follow.yes_button)
    assert got[-1] == RatingChoice("dissatisfied", "unclear_materials", True)
    assert len(got) == 2  # the answer replaces the level kept first
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


def test_a_typed_receipt_number_shows_the_status_but_no_rating(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    """Receipt numbers are easy to guess: only the holder's card or the receipt's own signed
    code (checked with the terminals' published keys) lets a case be rated."""
    terminal = make_terminal()
    terminal.window.resize(1920, 1080)
    journey = with_lookup(terminal)
    key = Ed25519PrivateKey.generate()
    terminal_id = terminal.parts.config.terminal_id
    journey.set_terminal_keys(PublishedKeys(TerminalKeys(active={terminal_id: key.public_key()})))
    receipt = "K01-20261123-0007"
    submission_id = file_case(terminal, receipt)
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, receipt)
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    [item] = journey.results_page.items
    assert item.status.text() == status_words("received")
    assert item.rating is None
    # The receipt's code, signed by this terminal: rated.
    click(qtbot, journey.results_page.again_button)
    # Scanned as a USB scanner types it, on the public address the receipts print.
    public = "https://zwfw.example.gov.cn/public"  # the link: some 220 characters
    scan(qtbot, journey, receipt_link(terminal, public, receipt, submission_id, key))
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    [item] = journey.results_page.items
    assert item.rating is not None
    qtbot.waitUntil(item.rating.isVisible, timeout=WAIT_MS)
    # A code signed with a key the platform never published: the status only.
    click(qtbot, journey.results_page.again_button)
    forged = Ed25519PrivateKey.generate()
    journey.look_up(
        receipt_link(terminal, platform_server.base_url, receipt, submission_id, forged)
    )
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    [item] = journey.results_page.items
    assert item.status.text() == status_words("received")
    assert item.rating is None


def test_the_card_taken_away_clears_the_cases_it_looked_up(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(idle_timeout_s=3600)
    journey = with_lookup(terminal)
    people = terminal.parts.demo_people
    file_case(terminal, "K01-20261123-0001", people[0].id_number)
    open_lookup(qtbot, terminal, journey)
    terminal.visit.present_demo_card()
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    assert journey.results_page.items
    terminal.card.on_reader_event(ReaderEvent(EventKind.CARD_REMOVED, "demo"))
    assert terminal.window.current_page() is terminal.visit.welcome
    assert journey.results_page.items == []
    assert not journey.active
    assert not any("K01-20261123-0001" in t for t in terminal.window.voice.spoken)
    # A lookup by a typed receipt number is not the card's: a card taken away leaves it up.
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "K01-20261123-0001")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    terminal.card.on_reader_event(ReaderEvent(EventKind.CARD_REMOVED, "demo"))
    assert shown(terminal, journey)
    assert journey.results_page.status_texts() == [status_words("received")]


def test_back_to_the_start_forgets_what_was_said_about_the_cases(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(idle_timeout_s=3600)
    journey = with_lookup(terminal)
    file_case(terminal, "K01-20261123-0007")
    open_lookup(qtbot, terminal, journey)
    scan(qtbot, journey, "K01-20261123-0007")
    qtbot.waitUntil(lambda: shown(terminal, journey), timeout=WAIT_MS)
    spoken = terminal.window.voice.spoken
    qtbot.waitUntil(lambda: any("K01-20261123-0007" in t for t in spoken), timeout=WAIT_MS)
    click(qtbot, journey.results_page.back_button)
    assert terminal.window.current_page() is terminal.visit.welcome
    assert not any("K01-20261123-0007" in t for t in spoken)
    assert not journey.active


def test_an_unhappy_face_is_kept_when_the_done_page_closes_during_its_follow_up(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    journey = with_lookup(terminal)

    class Result:
        submission_id = str(uuid.uuid4())
        receipt_number = "K01-20261123-0012"
        service_name = "居住证申领"
        delivered = False

    journey.visit_submitted(Result())  # type: ignore[arg-type]
    done = terminal.visit.done
    done.show_done(accepted_text="ok", receipt_number="K01-20261123-0012", notice="", printed="")
    done.rating_buttons["very_dissatisfied"].click()
    # Why? is asked, and the citizen walks away before answering.
    terminal.window.end_visit(EndReason.IDLE)  # the done page's countdown ran out
    outbox = terminal.parts.outbox
    qtbot.waitUntil(
        lambda: any(i.kind == RATING_KIND for i in outbox.items()), timeout=WAIT_MS
    )
    [row] = [i for i in outbox.items() if i.kind == RATING_KIND]
    assert row.summary is not None
    assert json.loads(row.summary)["submission_id"] == Result.submission_id


def test_the_follow_up_answer_replaces_the_unhappy_face_queued_first(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    journey = with_lookup(terminal)

    class Result:
        submission_id = str(uuid.uuid4())
        receipt_number = "K01-20261123-0013"
        service_name = "居住证申领"
        delivered = False

    queued: list[tuple[str, RatingChoice]] = []
    disk = threading.Event()  # the first rating's write is slow until this is set

    class Desk:
        """The rating desk, recording what it is handed, in order."""

        def queue(self, submission_id: str, choice: RatingChoice) -> str:
            if not choice.reason:
                disk.wait(WAIT_MS / 1000)
            queued.append((submission_id, choice))
            return str(len(queued))

    journey._ratings = Desk()  # type: ignore[assignment]
    journey.visit_submitted(Result())  # type: ignore[arg-type]
    done = terminal.visit.done
    done.show_done(accepted_text="ok", receipt_number="K01-20261123-0013", notice="", printed="")
    done.rating_buttons["dissatisfied"].click()
    done.rating_follow_up.reason_buttons["long_wait"].click()
    done.rating_follow_up.yes_button.click()
    disk.set()
    qtbot.waitUntil(lambda: len(queued) == 2, timeout=WAIT_MS)
    # In this order: the answer, queued and sent last, is the rating the platform keeps.
    assert queued == [
        (Result.submission_id, RatingChoice("dissatisfied")),
        (Result.submission_id, RatingChoice("dissatisfied", "long_wait", True)),
    ]
