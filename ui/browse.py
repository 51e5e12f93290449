"""The service guide without a card: the services, each one's guide read and spoken, and its
list of materials to take away as a QR code a phone can photograph.

A journey of its own beside the visit, not a step of it: the visit stays at its welcome step, so a
card placed on the reader at any time starts the visit as it would on the welcome page. Nothing
here is personal, but the visit's idle guard does not apply before a card is read, so the guide
keeps its own idle clock and ends the browsing like a visit (the shell's end_visit).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QSizePolicy, QWidget

from kiosk.errors import UserFacingError, message_for
from kiosk.i18n import _, pick
from kiosk.visit_steps import EndReason
from ui.background import Background
from ui.journey import Journey, ShellPort
from ui.screens import GuidePage, Page, ServicesPage, sentences, shown_names
from ui.shell import banner
from ui.widgets import ActivityWatch, Text, button, label, named

if TYPE_CHECKING:
    from kiosk.catalogue import Catalogue, Service

log = logging.getLogger(__name__)

QR_MIN_PX = 280  # a phone photographs it from a step away
QR_MAX_PX = 640
QR_QUIET_MODULES = 4  # the quiet zone ISO/IEC 18004 asks for, drawn white as part of the code
# Beyond this many modules a side (quiet zone included, version 20) a code shrinks to under three
# pixels a module at its smallest: a lower error correction level is used if it keeps it smaller.
QR_MAX_MODULES = 105

Modules = tuple[tuple[bool, ...], ...]


# -- what the code holds ------------------------------------------------------------------------
def materials_text(service: Service) -> str:
    """The service's name and what to bring, as plain text in the active language."""
    lines = [pick(service.name), _("What to bring:")]
    lines += [f"{number}. {pick(m)}" for number, m in enumerate(service.guide.materials, 1)]
    return "\n".join(lines)


def qr_modules(text: str) -> Modules:
    """The QR modules of the text, quiet zone included, at the highest error correction level
    that keeps the code readable at its smallest (H for any usual list). Runs on a worker: a long
    list takes the qrcode library a while."""
    import qrcode  # about 20 ms of import the first screen need not wait for
    from qrcode.exceptions import DataOverflowError

    levels = (
        qrcode.constants.ERROR_CORRECT_H,
        qrcode.constants.ERROR_CORRECT_Q,
        qrcode.constants.ERROR_CORRECT_M,
        qrcode.constants.ERROR_CORRECT_L,
    )
    smallest: Modules = ()
    for level in levels:
        code = qrcode.QRCode(error_correction=level, border=QR_QUIET_MODULES)
        code.add_data(text.encode("utf-8"))
        try:
            code.make(fit=True)
        except (DataOverflowError, ValueError):  # the library says either when it is full
            continue
        modules = tuple(tuple(bool(m) for m in row) for row in code.get_matrix())
        if len(modules) <= QR_MAX_MODULES:
            return modules
        if not smallest or len(modules) < len(smallest):
            smallest = modules
    if not smallest:
        raise ValueError("too much text for a QR code")
    return smallest


def qr_pixmap(modules: Modules, side: int) -> QPixmap:
    """The code drawn black on white in a square of `side` pixels, each module a whole number of
    pixels (a blurred edge is harder to read), centred; what is left over widens the quiet zone."""
    pixmap = QPixmap(side, side)
    pixmap.fill(QColor("#ffffff"))
    count = len(modules)
    if count == 0:
        return pixmap
    module = max(1, side // count)
    offset = (side - module * count) // 2
    painter = QPainter(pixmap)
    black = QColor("#000000")
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            if dark:
                painter.fillRect(offset + x * module, offset + y * module, module, module, black)
    painter.end()
    return pixmap


class QrCode(QWidget):
    """A QR code drawn as large as the page gives it, always black on white (in high contrast too:
    a phone reads dark modules on a light ground)."""

    def __init__(self) -> None:
        super().__init__()
        self._modules: Modules = ()
        self._pixmap: QPixmap | None = None
        self._side = QR_MIN_PX
        # Asked for its side, never fixed to it: a page in the stack that cannot shrink would
        # hold the whole window at its size when the panel is smaller.
        self.setMinimumSize(QR_MIN_PX, QR_MIN_PX)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(self._side, self._side)

    def set_side(self, side: int) -> None:
        """The side it would like (at least QR_MIN_PX); it may be given less, never more."""
        side = max(QR_MIN_PX, side)
        if side != self._side:
            self._side = side
            self.setMaximumSize(side, side)
            self.updateGeometry()

    def set_modules(self, modules: Modules) -> None:
        self._modules = modules
        self._pixmap = None
        self.update()

    def has_code(self) -> bool:
        return bool(self._modules)

    def clear(self) -> None:
        self.set_modules(())

    def pixmap(self) -> QPixmap:
        """The code at the widget's present size."""
        side = min(self.width(), self.height())
        if self._pixmap is None or self._pixmap.width() != side:
            self._pixmap = qr_pixmap(self._modules, side)
        return self._pixmap

    def paintEvent(self, event: QPaintEvent) -> None:
        if min(self.width(), self.height()) <= 0:
            return
        painter = QPainter(self)
        pixmap = self.pixmap()
        painter.drawPixmap(
            QRect(
                (self.width() - pixmap.width()) // 2,
                (self.height() - pixmap.height()) // 2,
                pixmap.width(),
                pixmap.height(),
            ),
            pixmap,
        )
        painter.end()


# -- the pages ----------------------------------------------------------------------------------
class BrowseListPage(ServicesPage):
    """The services, as on the visit's services page, with no greeting: nobody is known yet."""

    def show_list(self, services: Sequence[Service]) -> None:
        self.show_services("", "", services)
        self.title.setText(_("Service guide"))
        if services:
            self.greeting.setText(_("Choose a service. No ID card is needed."))
        else:
            self.greeting.setText(
                _("No service guides can be shown at this terminal now. Please ask staff.")
            )
        self.masked_id.hide()
        self.end_button.setText(_("Back to the start"))
        named(self.end_button, self.end_button.text(), _("Back to the welcome page"))

    def wipe(self) -> None:
        self.show_services("", "", ())
        self.title.clear()

    def spoken_text(self) -> str:
        return sentences(
            self.title.text(),
            self.greeting.text(),
            *shown_names(self.list),
            self.list.status_text(),
        )


class BrowseGuidePage(GuidePage):
    """A service's guide, as in the visit, with the way to take its list away instead of the
    form, and how to apply."""

    def __init__(self) -> None:
        super().__init__()
        self.apply_hint = label(name="help")
        self.body.addWidget(self.apply_hint)

    def show_guide(self, service: Service) -> None:
        super().show_guide(service)
        self.back_button.setText(_("Back to the list"))
        named(self.back_button, self.back_button.text(), _("Back to the list of services"))
        self.start_button.setText(_("Take the list with you"))
        named(
            self.start_button,
            self.start_button.text(),
            _("Shows what to bring as a code to scan with your phone"),
        )
        self.apply_hint.setText(_("To apply, place your ID card on the reader at any time."))

    def wipe(self) -> None:
        super().wipe()
        self.apply_hint.clear()

    def spoken_text(self) -> str:
        return sentences(super().spoken_text(), self.apply_hint.text())


class MaterialsPage(Page):
    """What to bring for one service: a QR code of the list to photograph, and the list itself.
    The code stands beside the list on a landscape panel and above it on a portrait one."""

    to_list = Signal()
    to_start = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.split = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.split.setSpacing(40)
        self.code = QrCode()
        self.split.addWidget(self.code, 0, Qt.AlignmentFlag.AlignHCenter)
        # What the code is for, then the list, beside the code or under it; all of it paged,
        # so that no line is cut off however large the text.
        self.caption: Text | None = None  # the first item of the list
        self.materials = self.pager()
        self.split.addWidget(self.materials, 1)
        self.body.addLayout(self.split, 1)
        self.list_button = button("", self.to_list)
        self.start_button = button("", self.to_start, name="primary")
        self.actions.addWidget(self.list_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.start_button)
        self._service_name = ""

    def show_materials(self, service: Service, modules: Modules) -> None:
        """The list and its code (no code: `modules` empty, and the page says so)."""
        self._service_name = pick(service.name)
        self.title.setText(_("Take the list of what to bring with you"))
        heading = label(
            _("What to bring for: {service}").format(service=self._service_name), name="question"
        )
        heading.setAccessibleName(heading.text())
        heading.setProperty("keep_with_next", True)
        caption = self.caption = label(name="help")
        items: list[QWidget] = [caption, heading]
        for number, material in enumerate(service.guide.materials, 1):
            item = label(f"{number}. {pick(material)}")
            item.setAccessibleName(item.text())
            items.append(item)
        if modules:
            caption.setText(
                _("Scan this code with your phone's camera to keep the list of what to bring.")
            )
            named(
                self.code,
                _("QR code of what to bring for: {service}").format(service=self._service_name),
                caption.text(),
            )
        else:
            caption.setText(_("This list is too long for a code. Please write it down."))
            named(self.code, "")
        caption.setAccessibleName(caption.text())
        self.code.set_modules(modules)
        self.code.setVisible(bool(modules))
        self.materials.set_items(items)
        self.list_button.setText(_("Back to the list"))
        named(self.list_button, self.list_button.text(), _("Back to the list of services"))
        self.start_button.setText(_("Back to the start"))
        named(self.start_button, self.start_button.text(), _("Back to the welcome page"))
        self.tab_order(
            self.materials.previous_button,
            self.materials.more_button,
            self.list_button,
            self.start_button,
        )
        self.start_button.setFocus()
        self._arrange()

    def wipe(self) -> None:
        self.materials.clear()  # the caption with it
        self.caption = None
        self.code.clear()
        self.title.clear()
        named(self.code, "")
        self._service_name = ""

    def _arrange(self) -> None:
        """The code as large as the room allows (within QR_MIN_PX..QR_MAX_PX), whole pixels a
        module: beside the list when the page is wider than tall, above it otherwise."""
        room = self.body_widget.contentsRect()
        width, height = room.width(), room.height()
        if width <= 0 or height <= 0:
            return
        if self.width() > self.height():
            self.split.setDirection(QBoxLayout.Direction.LeftToRight)
            self.split.setAlignment(self.code, Qt.AlignmentFlag.AlignTop)
            side = min(height, width * 9 // 20)  # the list keeps more than half the width
        else:
            self.split.setDirection(QBoxLayout.Direction.TopToBottom)
            self.split.setAlignment(self.code, Qt.AlignmentFlag.AlignHCenter)
            side = min(width, height // 2)
        self.code.set_side(max(QR_MIN_PX, min(QR_MAX_PX, side)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange()

    def refit(self) -> None:
        self._arrange()
        super().refit()

    def spoken_text(self) -> str:
        return sentences(
            self.title.text(),
            *shown_names(self.materials),
            self.materials.status_text(),
        )


# -- the journey --------------------------------------------------------------------------------
class BrowseJourney(Journey):
    """From the welcome page's "Service guide" button: the list, a guide, its list of materials,
    and back; a card read meanwhile, the idle clock or "Back to the start" ends it."""

    def __init__(
        self,
        shell: ShellPort,
        *,
        catalogue: Catalogue,
        background: Background,
        idle_ms: int,
        warning_s: int,
    ) -> None:
        super().__init__(shell)
        self._shell = shell
        self._catalogue = catalogue
        self._background = background
        self._service: Service | None = None
        self._browsing = False
        self._activity = ActivityWatch(self)  # anyone there: the idle clock starts again
        self._activity.seen.connect(self.keep_going)
        self._generation = 0  # bumps whenever the page changes: a late code is dropped

        self.list_page = BrowseListPage()
        self.guide_page = BrowseGuidePage()
        self.materials_page = MaterialsPage()
        for page in self.pages():
            shell.add_page(page)
        self.list_page.chosen.connect(self._choose)
        self.list_page.end.connect(self.back_to_start)
        self.guide_page.back.connect(self.show_list)
        self.guide_page.start.connect(self._show_materials)
        self.materials_page.to_list.connect(self.show_list)
        self.materials_page.to_start.connect(self.back_to_start)

        # The idle clock: the visit's idle guard applies only once a card has been read.
        self.idle_timer = QTimer(self, singleShot=True, interval=idle_ms)
        self.idle_timer.timeout.connect(self._idle_warning)
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._on_tick)
        self._warning_s = warning_s
        self._countdown = 0
        self.idle_text = label()
        self.idle_button = button("", self.keep_going, name="primary")
        self.idle_banner = banner(self.idle_text, self.idle_button)
        shell.add_banner(self.idle_banner)
        self.retranslate()

    def pages(self) -> tuple[QWidget, ...]:
        return (self.list_page, self.guide_page, self.materials_page)

    @property
    def browsing(self) -> bool:
        return self._browsing

    def set_catalogue(self, catalogue: Catalogue) -> None:
        """A fresher catalogue: the list shows it the next time it is shown."""
        self._catalogue = catalogue

    # -- showing --------------------------------------------------------------------------------
    def start(self) -> None:
        """The citizen pressed "Service guide" on the welcome page."""
        self._browsing = True
        self._activity.watch(True)
        self.idle_timer.start()
        self.show_list()

    def show_list(self) -> None:
        self._generation += 1
        self._service = None
        self.list_page.show_list(self._catalogue.services)
        self._shell.show_page(self.list_page)

    def _choose(self, service_id: str) -> None:
        try:
            self._service = self._catalogue.service(service_id)
        except UserFacingError as exc:  # a button of a catalogue replaced meanwhile
            self.show_list()
            self._shell.flash(message_for(exc))
            return
        self._show_guide()

    def _show_guide(self) -> None:
        if self._service is None:
            self.show_list()
            return
        self._generation += 1
        self.guide_page.show_guide(self._service)
        self._shell.show_page(self.guide_page)

    def _show_materials(self) -> None:
        """The code is made on a worker first, then the page comes up whole, code and all, so
        that what is read out is what is on the screen."""
        service = self._service
        if service is None:
            self.show_list()
            return
        self._generation += 1
        self._background.run(
            functools.partial(qr_modules, materials_text(service)),
            functools.partial(self._code_ready, self._generation, service),
            functools.partial(self._code_failed, self._generation, service),
        )

    def _code_ready(self, generation: int, service: Service, modules: Modules) -> None:
        if generation != self._generation or not self._browsing:
            return  # the citizen went elsewhere meanwhile
        self.materials_page.show_materials(service, modules)
        self._shell.show_page(self.materials_page)

    def _code_failed(self, generation: int, service: Service, exc: BaseException) -> None:
        log.warning("materials code not made: %s", type(exc).__name__)
        self._code_ready(generation, service, ())

    def back_to_start(self) -> None:
        """Back to the welcome page, where a card starts a visit."""
        self._stop()
        self._shell.back_to_visit()

    def visit_shown(self, _step: str = "") -> None:
        """The visit put one of its pages up (a card was read, or its start came back): the
        browsing is over."""
        if self._browsing and self._shell.current_page() not in self.pages():
            self._stop()

    def _stop(self) -> None:
        self._browsing = False
        self._activity.watch(False)
        self.idle_timer.stop()
        self._tick.stop()
        self.idle_banner.hide()
        self._generation += 1
        self._service = None
        self.list_page.wipe()
        self.guide_page.wipe()
        self.materials_page.wipe()

    def retranslate(self) -> None:
        self.idle_button.setText(_("I need more time"))
        named(self.idle_button, self.idle_button.text())
        if self._tick.isActive():
            self._show_countdown()
        current = self._shell.current_page()
        if current is self.list_page:
            self.show_list()
        elif current is self.guide_page:
            self._show_guide()
        elif current is self.materials_page:
            self._show_materials()  # the code holds the list in the language shown

    def wipe(self) -> None:
        self._stop()
        self.idle_text.clear()

    # -- the idle clock -------------------------------------------------------------------------
    def keep_going(self) -> None:
        """Someone is there: the clock starts again and any warning goes."""
        if not self._browsing:
            return
        self._tick.stop()
        self.idle_banner.hide()
        self.idle_timer.start()

    def _idle_warning(self) -> None:
        if not self._browsing:
            return
        self._countdown = self._warning_s
        self.retranslate_banner()
        self._tick.start()
        self.idle_banner.show()
        self._shell.say(self.idle_text.text())

    def retranslate_banner(self) -> None:
        self.idle_button.setText(_("I need more time"))
        named(self.idle_button, self.idle_button.text())
        self._show_countdown()

    def _on_tick(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._tick.stop()
            self._shell.end_visit(EndReason.IDLE)
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        self.idle_text.setText(
            _(
                "Are you still there? The service guide will close in {seconds} seconds."
            ).format(seconds=self._countdown)
        )
