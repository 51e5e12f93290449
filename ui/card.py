"""The card journey: what the readers report becomes a visit, advice, or a question for staff.
The rules are kiosk.card_rules'; this journey carries them out and owns the MRZ page and the
"card taken away" banner."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QTimer, Signal

from devices.identity import Identity
from devices.readers.base import EventKind, ReaderEvent
from kiosk.access_keys import AccessKeys, parse_access_key
from kiosk.card_rules import Act, decide
from kiosk.errors import UserFacingError
from kiosk.i18n import _
from kiosk.session import EndReason, SecondCardError
from ui.journey import Journey, ShellPort
from ui.mrz_panel import MrzPanel
from ui.screens import Page
from ui.shell import banner
from ui.visit import VisitJourney
from ui.widgets import button, label

log = logging.getLogger(__name__)


class MrzPage(Page):
    """Where staff type a travel document's MRZ data while the document lies on the reader."""

    cancel = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.panel = MrzPanel()
        self.body.addWidget(self.panel)
        self.body.addStretch(1)
        self.cancel_button = button("", self.cancel)
        self.actions.addWidget(self.cancel_button)
        self.actions.addStretch(1)

    def spoken_text(self) -> str:
        return self.panel.error.text()


class CardJourney(Journey):
    def __init__(
        self,
        shell: ShellPort,
        visit: VisitJourney,
        *,
        removal_ends_visit: bool,
        staff_view: bool,
        access_keys: AccessKeys | None = None,
        retry_read: Callable[[str], None] | None = None,
        idle_ms: int = 120_000,
    ) -> None:
        super().__init__(shell)
        self._shell = shell
        self._visit = visit
        self._removal_ends_visit = removal_ends_visit
        self._staff_view = staff_view and access_keys is not None and retry_read is not None
        self._access_keys = access_keys
        self._retry_read = retry_read
        self._mrz_reader = ""  # the reader whose chip waits for staff's MRZ entry
        # While a case is looked up, a card is the citizen asking for theirs (ui/lookup.py): it
        # says whether it took the card.
        self._lookup: Callable[[Identity], bool] | None = None
        # ...and that card taken away ends the lookup it asked for: True when it did.
        self._lookup_removed: Callable[[], bool] | None = None

        self.mrz_page = MrzPage()
        self.mrz = self.mrz_page.panel
        self.mrz.submitted.connect(self._mrz_entered)
        self.mrz_page.cancel.connect(self._mrz_cancelled)
        # A document left on the reader with its MRZ data half typed: no visit is active yet,
        # so the shell's idle guard does not apply; this clock does.
        self.mrz_timer = QTimer(self, singleShot=True, interval=idle_ms)
        self.mrz_timer.timeout.connect(self._mrz_cancelled)
        for field in (self.mrz.number, self.mrz.birth, self.mrz.expiry):
            field.textEdited.connect(self._mrz_typed)
        shell.add_page(self.mrz_page)
        self.card_text = label()
        self.card_continue = button("", self._continue_without_card, name="primary")
        self.card_end = button("", self._end_without_card)
        self.card_banner = banner(self.card_text, self.card_continue, self.card_end)
        shell.add_banner(self.card_banner)
        self.retranslate()

    def retranslate(self) -> None:
        self.card_continue.setText(_("Continue"))
        self.card_end.setText(_("End the visit"))
        self.mrz.retranslate()
        self.mrz_page.cancel_button.setText(_("Back to the start"))
        self.mrz_page.title.setText(_("Read the document's chip"))

    def wipe(self) -> None:
        self.card_banner.hide()
        self.card_text.clear()
        self._forget_mrz()

    def on_reader_event(self, event: ReaderEvent) -> None:
        decision = decide(
            event,
            self._visit.where(),
            removal_ends_visit=self._removal_ends_visit,
            staff_view=self._staff_view,
        )
        if event.error is not None:
            log.warning("reader %s: %s %s", event.reader, event.error.value, event.detail)
        if decision.forget_mrz:
            self._forget_mrz(event.reader)
        if (
            event.kind is EventKind.CARD_REMOVED
            and self._lookup_removed is not None
            and self._lookup_removed()
        ):
            return  # the holder's cases were on the screen: wiped, and the start page is back
        act = decision.act
        if act is Act.IDENTITY and event.identity is not None:
            self._card_read(event)
        elif act in (Act.READING, Act.ADVISE):
            self._visit.show_welcome_message(_(decision.advice))
        elif act is Act.CLEAR:
            self._visit.show_welcome_message("")
        elif act is Act.END_VISIT:
            self._shell.end_visit(EndReason.CARD_REMOVED)
        elif act is Act.ASK_STAFF:
            self._ask_after_card_removal()
        elif act is Act.ASK_MRZ:
            if self._visit.needs_staff():
                self._shell.flash(_("A staff member must sign in before a card is read."))
                return
            self._ask_for_mrz(event.reader, _(decision.advice))

    def set_lookup(
        self,
        lookup: Callable[[Identity], bool] | None,
        removed: Callable[[], bool] | None = None,
    ) -> None:
        """lookup: offered each card read (True when it took it); removed: told a card was taken
        away, before the visit's rules act (True when it ended a lookup made with the card)."""
        self._lookup = lookup
        self._lookup_removed = removed

    def _card_read(self, event: ReaderEvent) -> None:
        assert event.identity is not None  # noqa: S101 - decide() only says IDENTITY with one
        if self._lookup is not None and self._lookup(event.identity):
            return  # the lookup page has it: no visit starts
        try:
            self._visit.card_read(event.identity)
        except SecondCardError as exc:
            self._shell.flash(exc.user_message())
            return
        except UserFacingError:
            return  # a card placed during the receipt page: nothing to do
        self.card_banner.hide()  # the same card is back

    # -- a travel document's chip needs its MRZ -----------------------------------------------
    def _ask_for_mrz(self, reader: str, advice: str) -> None:
        self._mrz_reader = reader
        self._visit.show_welcome_message("")
        self.mrz.ask(advice)
        self._shell.show_page(self.mrz_page)
        self.mrz_timer.start()

    def _mrz_entered(self, number: str, birth: str, expiry: str) -> None:
        keys, retry, reader = self._access_keys, self._retry_read, self._mrz_reader
        if keys is None or retry is None or not reader:
            return
        try:
            key = parse_access_key(number, birth, expiry)
        except UserFacingError as exc:
            self.mrz.show_error(exc.user_message())
            self._shell.say(exc.user_message())
            return
        keys.provide(reader, key)
        self.mrz.show_error("")
        self._shell.say(_("Reading your card. Please keep it still on the reader…"))
        retry(reader)

    def _mrz_typed(self) -> None:
        self.mrz_timer.start()

    def _mrz_cancelled(self) -> None:
        """Staff give up on the chip: the typed data goes, the start page comes back."""
        self._forget_mrz()
        self._shell.back_to_visit()

    def _forget_mrz(self, reader: str | None = None) -> None:
        if self._access_keys is not None:
            self._access_keys.forget(reader)
        if reader is None or reader == self._mrz_reader:
            self._mrz_reader = ""
            self.mrz_timer.stop()
            self.mrz.clear()
            if self._shell.current_page() is self.mrz_page:
                self._shell.back_to_visit()

    # -- the card taken away at a counter or service point ------------------------------------
    def _ask_after_card_removal(self) -> None:
        """Staff decide whether the visit goes on without the card."""
        text = _("The ID card was taken off the reader. Continue this application?")
        self.card_text.setText(text)
        self.card_banner.show()
        self._shell.say(text)

    def _continue_without_card(self) -> None:
        self.card_banner.hide()
        self._shell.touch()

    def _end_without_card(self) -> None:
        self._shell.end_visit(EndReason.CARD_REMOVED)
