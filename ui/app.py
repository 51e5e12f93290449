"""Starting Qt around the built parts: the window, bridges, voice, background work."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from kiosk.app import Parts
from kiosk.catalogue import Catalogue
from kiosk.errors import message_for
from kiosk.i18n import _
from kiosk.queue_view import UploadQueue
from kiosk.session import Step
from kiosk.sync import SyncStatus
from kiosk.sync_messages import describe_recovery
from ui.background import Background
from ui.bridge import ReaderBridge, StatusBridge
from ui.voice import VoiceGuide
from ui.window import KioskWindow

log = logging.getLogger(__name__)

HOUSEKEEPING_MS = 3_600_000  # delivered rows past their retention are removed hourly


class Terminal:
    """The running terminal: window plus the bridges that feed it."""

    def __init__(self, parts: Parts, app: QApplication) -> None:
        self.parts = parts
        self.app = app
        self.background = Background()
        self.voice = VoiceGuide(enabled=parts.config.voice)
        self.readers = ReaderBridge()
        self.status = StatusBridge()
        catalogue = parts.catalogue or Catalogue(version="", services=())
        demo_card = self._present_demo_card if parts.demo_reader is not None else None
        self.window = KioskWindow(
            config=parts.config,
            catalogue=catalogue,
            submit=parts.submitter.submit,
            background=self.background,
            voice=self.voice,
            demo_card=demo_card,
            rate=parts.client.rate,
            queue=UploadQueue(parts.outbox, parts.sync),
            access_keys=parts.access_keys,
            retry_read=parts.retry_card_read,
            photos=parts.photos,
        )
        self.readers.event.connect(self.window.on_reader_event)
        self.status.changed.connect(self.window.update_queue_status)
        self.status.changed.connect(self._platform_seen)
        self._catalogue_fresh = False
        self._refreshing = False
        self._demo_turn = 0
        self._housekeeping = QTimer(interval=HOUSEKEEPING_MS)
        if parts.outbox_recovery is not None:
            self.window.show_staff_notice(describe_recovery(parts.outbox_recovery))
        if parts.catalogue is None:
            error = parts.catalogue_error
            self.window.message.show_message(
                _("Out of service"), message_for(error) if error else _("Out of service")
            )
            self.window.stack.setCurrentWidget(self.window.message)

    def start(self) -> None:
        self.parts.sync.set_listener(self.status.sink)
        self.parts.sync.start()
        for reader in self.parts.readers:
            reader.start(self.readers.sink)
        self._start_refresh()
        self._housekeeping.timeout.connect(self._tidy)
        self._housekeeping.start()
        self._tidy()

    def run_later(self, work: Callable[[], None]) -> None:
        """Start-up work that may take a while (imports, a platform boot), off the GUI thread."""
        self.background.run(
            work,
            lambda _r: None,
            lambda exc: log.warning("start-up work failed: %s", type(exc).__name__),
        )

    def _tidy(self) -> None:
        self.background.run(
            self.parts.housekeeping,
            lambda _n: None,
            lambda exc: log.warning("outbox housekeeping failed: %s", type(exc).__name__),
        )

    def _start_refresh(self) -> None:
        self._refreshing = True
        self.background.run(self._refresh_catalogue, self._catalogue_ready, self._catalogue_failed)

    def _platform_seen(self, status: SyncStatus) -> None:
        """The platform answers after all (it was away at start): fetch its catalogue now."""
        if status.online and not self._catalogue_fresh and not self._refreshing:
            self._start_refresh()

    def _refresh_catalogue(self) -> Catalogue:
        return self.parts.catalogue_store.refresh(self.parts.client)

    def _catalogue_ready(self, catalogue: Catalogue) -> None:
        self._refreshing = False
        self._catalogue_fresh = True
        self.parts.catalogue = catalogue
        if self.window.session.step is Step.WELCOME and not self.window.session.active:
            self.window.session.catalogue = catalogue
            if (
                self.window.stack.currentWidget() is self.window.message
                and self.parts.catalogue_error
            ):
                self.parts.catalogue_error = None
                self.window.render()

    def _catalogue_failed(self, exc: BaseException) -> None:
        self._refreshing = False
        log.warning("catalogue not refreshed: %s", type(exc).__name__)

    def _present_demo_card(self) -> None:
        reader = self.parts.demo_reader
        if reader is None or not self.parts.demo_people:
            return
        person = self.parts.demo_people[self._demo_turn % len(self.parts.demo_people)]
        self._demo_turn += 1
        reader.present(person)

    def stop(self) -> None:
        self._housekeeping.stop()
        self.background.shutdown(wait=True)


def run(
    parts: Parts,
    *,
    self_check: bool = False,
    benchmark_ready: bool = False,
    fullscreen: bool = False,
    started: float | None = None,
) -> int:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("hall-terminal")
    terminal = Terminal(parts, app)
    terminal.window.resize(1280, 900)
    if fullscreen:
        terminal.window.showFullScreen()
    else:
        terminal.window.show()
    terminal.start()
    if benchmark_ready:

        def ready() -> None:
            # the first page is painted and takes input: the benchmark times launch to here
            print("READY", flush=True)

        QTimer.singleShot(0, ready)
    for later in parts.after_first_paint:
        QTimer.singleShot(0, lambda later=later: terminal.run_later(later))
    if self_check:
        from ui.selfcheck import SelfCheck

        check = SelfCheck(terminal)
        QTimer.singleShot(0, check.begin)
        app.exec()
        terminal.stop()
        if check.error:
            print(_("Self-check failed: {reason}").format(reason=check.error), file=sys.stderr)
            return 1
        print(str(check.receipt_path))
        return 0
    code = app.exec()
    terminal.stop()
    return int(code)


def run_out_of_service(text: str, *, fullscreen: bool = False, self_check: bool = False) -> int:
    """A terminal that cannot open its outbox shows why and takes nothing in; exit status 3."""
    from ui.screens import MessagePage
    from ui.theme import Palette, Sizes, stylesheet

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle(_("Government services self-service terminal"))
    window.setStyleSheet(stylesheet(Palette(), Sizes()))
    page = MessagePage()
    page.show_message(_("Out of service"), text)
    page.home_button.hide()  # there is nowhere to go until staff have fixed it
    window.setCentralWidget(page)
    window.resize(1280, 900)
    if fullscreen:
        window.showFullScreen()
    else:
        window.show()
    if not self_check:
        app.exec()
    window.close()
    return 3
