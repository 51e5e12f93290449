"""Starting Qt around the built parts: the shell, its journeys, bridges, voice, background work.

Ownership: every QObject made here has the shell as its Qt parent (or is the shell), and the
Terminal deletes the shell on the GUI thread when it stops. Nothing Qt is owned by Python alone,
and the shell holds no reference back to the Terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from devices.printing import PrintStatus
from devices.readers.base import ReaderEvent
from kiosk.app import Parts
from kiosk.card_rules import staff_notice
from kiosk.catalogue import Catalogue
from kiosk.catalogue_store import CatalogueStore
from kiosk.config import Mode
from kiosk.demo import DemoCards
from kiosk.errors import message_for
from kiosk.help_requests import HelpDesk
from kiosk.i18n import _
from kiosk.platform_client import PlatformClient
from kiosk.queue_view import UploadQueue
from kiosk.reprint import PRINT_PROBLEMS
from kiosk.staff import StaffDirectory, StaffSessions
from kiosk.staff_sync import PlatformStaffSource, StaffSync
from kiosk.sync import SyncStatus
from kiosk.sync_messages import describe_error, describe_recovery
from offline_queue.errors import OutboxCorruptError
from ui.background import Background
from ui.bridge import ReaderBridge, StatusBridge
from ui.browse import BrowseJourney
from ui.card import CardJourney
from ui.collector import GuiThreadCollector
from ui.help import HelpJourney
from ui.lookup import LookupJourney, add_lookup
from ui.screens import WelcomePage
from ui.shell import Shell
from ui.staff_queue import QueueJourney
from ui.staff_signin import StaffGate
from ui.visit import VisitJourney
from ui.voice import VoiceGuide

log = logging.getLogger(__name__)

HOUSEKEEPING_MS = 3_600_000  # delivered rows past their retention are removed hourly


def _load_divisions() -> None:
    from kiosk.divisions import register

    register()


def _ignore(_value: object) -> None:
    return None


def _log_failure(what: str) -> Callable[[BaseException], None]:
    def failed(exc: BaseException) -> None:
        log.warning("%s failed: %s", what, type(exc).__name__)

    return failed


# The platform refused the terminal itself (not one submission): nothing will upload until staff
# act, so they are told on the screen.
REFUSED_TERMINAL = frozenset(
    {
        "terminal_revoked",
        "terminal_unknown",
        "signature_invalid",
        "credentials_missing",
        "terminal_mismatch",
        "sealed_invalid",
    }
)


class StaffNotices(QObject):
    """Notices for staff in every mode: damage to the upload queue found while running, a card
    reader that is not the one this terminal trusts."""

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell)
        self._shell = shell

    def sync_status(self, status: SyncStatus) -> None:
        if status.last_error in REFUSED_TERMINAL and not self._shell.staff_banner.isVisible():
            # What is queued stays queued; staff must enrol the terminal (again).
            self._shell.show_staff_notice(
                _("For staff: {detail}").format(detail=describe_error(status.last_error))
            )
            return
        damaged = status.last_error == OutboxCorruptError.code
        if damaged and not self._shell.staff_banner.isVisible():
            # The next start sets the damaged file aside (offline_queue.recovery.open_outbox).
            self._shell.show_staff_notice(
                _(
                    "For staff: the upload queue on this terminal is damaged. Please restart the "
                    "terminal: it will set the damaged queue aside and start a fresh one."
                )
            )

    def reader_event(self, event: ReaderEvent) -> None:
        notice = staff_notice(event)
        if notice:
            self._shell.show_staff_notice(_(notice))


class PrinterNotes(QObject):
    """Tells staff on the terminal's screen when the receipt printer needs them: once the
    citizen's visit is over, so their own page keeps its room (they were told what concerns
    them there)."""

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell)
        self._shell = shell
        self._waiting: PrintStatus | None = None

    def receipt_printed(self, result: object) -> None:
        status = getattr(getattr(result, "print_result", None), "status", None)
        if isinstance(status, PrintStatus) and status is not PrintStatus.OK:
            self._waiting = status

    def step_shown(self, step: str) -> None:
        status = self._waiting
        if step != "welcome" or status is None:
            return
        self._waiting = None
        if status is PrintStatus.PAPER_NEAR_END:
            text = _(
                "For staff: the receipt printer's paper is nearly out. Please load a new roll."
            )
        else:
            reason = _(PRINT_PROBLEMS.get(status, PRINT_PROBLEMS[PrintStatus.ERROR]))
            text = _("For staff: a receipt did not print ({reason}). Please check the printer.")
            text = text.format(reason=reason)
        self._shell.show_staff_notice(text)


class CatalogueUpdates(QObject):
    """Fetches the platform's catalogue at start and again when the platform first answers
    (it may be away at start); a fresher catalogue reaches the next visit."""

    def __init__(
        self,
        shell: Shell,
        parts: Parts,
        visit: VisitJourney,
        queue: QueueJourney | None,
        background: Background,
        *,
        browse: BrowseJourney | None = None,
        lookup: LookupJourney | None = None,
    ) -> None:
        super().__init__(shell)
        self._parts = parts
        self._visit = visit
        self._browse = browse
        self._lookup = lookup
        self._queue = queue
        self._background = background
        self._fresh = False
        self._refreshing = False

    def refresh(self) -> None:
        self._refreshing = True
        self._background.run(
            _refresh(self._parts.catalogue_store, self._parts.client), self._ready, self._failed
        )

    def platform_seen(self, status: SyncStatus) -> None:
        if status.online and not self._fresh and not self._refreshing:
            self.refresh()

    def _ready(self, catalogue: Catalogue) -> None:
        self._refreshing = False
        self._fresh = True
        self._parts.catalogue = catalogue
        self._parts.catalogue_fetched_at = time.time()  # just taken from the platform
        if self._queue is not None:
            self._queue.set_catalogue(catalogue, self._parts.catalogue_fetched_at)
        if self._parts.reprinter is not None:
            self._parts.reprinter.set_catalogue(catalogue)
        if self._browse is not None:
            self._browse.set_catalogue(catalogue)
        if self._lookup is not None:
            self._lookup.set_catalogue(catalogue)
        if self._visit.offer_catalogue(catalogue) and self._parts.catalogue_error:
            self._parts.catalogue_error = None
            self._visit.render()  # the out-of-service page gives way to the welcome

    def _failed(self, exc: BaseException) -> None:
        self._refreshing = False
        log.warning("catalogue not refreshed: %s", type(exc).__name__)


def _refresh(store: CatalogueStore, client: PlatformClient) -> Callable[[], Catalogue]:
    def op() -> Catalogue:
        return store.refresh(client)

    return op


class Terminal:
    """The running terminal: the shell, its journeys and the bridges that feed them."""

    def __init__(
        self,
        parts: Parts,
        app: QApplication,
        *,
        shell: Shell | None = None,
        welcome: WelcomePage | None = None,
        background: Background | None = None,
    ) -> None:
        """`shell`, `welcome` and `background`: those of the first screen, shown while the parts
        were being built (ui/start.py); made here otherwise."""
        self.parts = parts
        self.app = app
        config = parts.config
        staff_view = config.mode is not Mode.KIOSK
        if shell is None:
            shell = Shell(config=config, voice=VoiceGuide(enabled=config.voice))
        self.window = shell
        self.voice = shell.voice
        self.background = background or Background(shell)
        self.collector = GuiThreadCollector(shell)
        self.readers = ReaderBridge(shell)
        self.status = StatusBridge(shell)
        self._housekeeping = QTimer(shell, interval=HOUSEKEEPING_MS)
        catalogue = parts.catalogue or Catalogue(version="", services=())
        demo = (
            DemoCards(parts.demo_reader, parts.demo_people)
            if parts.demo_reader is not None
            else None
        )
        # Counter and rural terminals: nothing without a signed-in staff member.
        self.staff: StaffGate | None = None
        if staff_view:
            directory = StaffDirectory(config.data_dir)
            sessions = StaffSessions(idle_s=config.staff_idle_s)
            # The hall's staff list comes from the platform when it answers; a member taken
            # off it is signed out at their next action.
            parts.sync.set_staff_sync(
                StaffSync(
                    directory,
                    PlatformStaffSource(parts.client),
                    audit=parts.audit,
                    on_removed=sessions.withdraw,
                )
            )
            self.staff = StaffGate(shell, directory, sessions, self.background, audit=parts.audit)
            shell.touched.connect(self.staff.touch)
            # Staff are the ones called: at a counter or a service point they are already here.
            shell.call_staff_button.hide()
        self.visit = VisitJourney(
            shell,
            config=config,
            catalogue=catalogue,
            submit=parts.submitter.submit,
            background=self.background,
            staff_view=staff_view,
            demo_card=demo.present if demo is not None else None,
            rate=None,  # ratings go through the outbox (ui/lookup.py wires the done page's)
            photos=parts.photos,
            welcome=welcome,
            staff=self.staff,
        )
        shell.set_visit(self.visit)
        # The printer's state after each receipt, for staff: paper nearly out, or a receipt
        # that did not come out (the citizen was told on their own page).
        self._printer_notes = PrinterNotes(shell)
        self.visit.submission_done.connect(self._printer_notes.receipt_printed)
        self.visit.step_changed.connect(self._printer_notes.step_shown)
        self.card = CardJourney(
            shell,
            self.visit,
            removal_ends_visit=config.card_removal_ends_visit,
            staff_view=staff_view,
            access_keys=parts.access_keys,
            retry_read=parts.retry_card_read,
            idle_ms=int(config.idle_timeout_s * 1000),
        )
        self.queue: QueueJourney | None = None
        if staff_view:
            self.queue = QueueJourney(
                shell, UploadQueue(parts.outbox, parts.sync), self.background, staff=self.staff
            )
            self.queue.set_catalogue(catalogue, parts.catalogue_fetched_at)
            self.queue.set_corrector(parts.corrector)
            self.queue.set_reprinter(parts.reprinter)
            if parts.reprinter is not None:
                parts.reprinter.set_catalogue(catalogue)
            self.status.changed.connect(self.queue.update_queue_status)
        # The service guide without a card, from the welcome page.
        self.browse = BrowseJourney(
            shell,
            catalogue=catalogue,
            background=self.background,
            idle_ms=int(config.idle_timeout_s * 1000),
            warning_s=int(config.idle_warning_s),
        )
        self.visit.welcome.browse.connect(self.browse.start)
        self.visit.step_changed.connect(self.browse.visit_shown)
        # Looking a case up, and the citizens' ratings queued in the outbox.
        self.lookup = add_lookup(
            shell,
            self.visit,
            desk=parts.lookup,
            ratings=parts.ratings,
            catalogue=catalogue,
            background=self.background,
            idle_ms=int(config.idle_timeout_s * 1000),
            warning_s=int(config.idle_warning_s),
            terminal_keys=parts.terminal_keys,  # a scanned receipt verified before rating
        )
        self.card.set_lookup(self.lookup.take_card, self.lookup.card_removed)
        self.catalogue = CatalogueUpdates(
            shell,
            parts,
            self.visit,
            self.queue,
            self.background,
            browse=self.browse,
            lookup=self.lookup,
        )
        self.notices = StaffNotices(shell)
        self.help = HelpJourney(
            shell, HelpDesk(parts.outbox, parts.sync, config), self.background
        )
        shell.help_requested.connect(self.help.request)
        self.readers.event.connect(self.card.on_reader_event)
        self.readers.event.connect(self.notices.reader_event)
        self.status.changed.connect(self.catalogue.platform_seen)
        self.status.changed.connect(self.notices.sync_status)
        self._housekeeping.timeout.connect(self._tidy)
        # When the window is shown before the terminal is built (ui/start.py), its first frame is
        # already out and the freezes at start() and after the deferred work do the job.
        shell.first_frame.connect(self.collector.freeze_long_lived)
        self.visit.render()
        if parts.outbox_recovery is not None:
            shell.show_staff_notice(describe_recovery(parts.outbox_recovery))
        if parts.catalogue is None:
            error = parts.catalogue_error
            self.visit.show_out_of_service(
                message_for(error) if error else _("Out of service")
            )
        self._stopped = False

    def start(self) -> None:
        self.collector.start()
        self.window.watch_for_people()
        self.parts.sync.set_listener(self.status.sink)
        self.parts.sync.start()
        for reader in self.parts.readers:
            reader.start(self.readers.sink)
        self.catalogue.refresh()
        self._housekeeping.start()
        self._tidy()
        # The division register (for the address picker) is read now, off the GUI thread, not
        # at the first address question.
        self.background.run(_load_divisions, _ignore, _log_failure("division register"))

    def run_later(self, work: Callable[[], None], done: Callable[[object], None] = _ignore) -> None:
        """Start-up work that may take a while (imports, a platform boot), off the GUI thread."""
        self.background.run(work, done, _log_failure("start-up work"))

    def _tidy(self) -> None:
        self.background.run(self.parts.housekeeping, _ignore, _log_failure("outbox housekeeping"))

    def stop(self) -> None:
        """Stop the GUI side: no more events in, workers finished, then every Qt object of the
        terminal deleted here, on the GUI thread."""
        if self._stopped:
            return
        self._stopped = True
        self._housekeeping.stop()
        self.readers.close()
        self.status.close()
        # The threads that emit into the bridges end before the bridges are deleted.
        for reader in self.parts.readers:
            reader.stop()
        self.parts.sync.stop()
        self.parts.sync.set_listener(None)
        self.window.stop_watching()
        text_inputs = self.visit.question.text_inputs
        if text_inputs is not None:
            text_inputs.shutdown()  # the handwriting recognizer and its worker
        self.background.forget_callbacks()
        self.background.shutdown(wait=True)
        self.collector.stop()
        if shiboken6.isValid(self.window):
            self.window.hide()
            shiboken6.delete(self.window)
