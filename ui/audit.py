"""An accessibility audit of the citizen's pages, measured on the real rendered widgets.

The checks are functions over a widget tree (`audit_page`): type size, contrast as drawn, touch
targets and the gaps between them, nothing cut off, outside the window or behind a scroll bar, an
accessible name on every control, spoken text on every page. `walk` drives a terminal through
every page of every service at each panel size, language and text step, the way a citizen would.

Contrast is measured on pixels of the rendered frame, not read from the palette. The palette a
style sheet leaves on a widget holds one colour pair per role, so it misses what is drawn for a
state (a checked choice is white on blue, a disabled button grey, an empty field shows its
placeholder colour), a transparent background painted by an ancestor (the label inside a service
button), and anything a widget paints itself. The frame is what a person sees. In the part of the
frame inside a widget's border and padding, the commonest colour is the background; the text
colour is the one, among colours covering at least a few whole pixels (the stems of glyphs 30 px
and larger are several pixels wide, so their core is drawn in the exact text colour), that stands
out most from it. Anti-aliased edge pixels are mixtures and cannot win over the core, and a
region with no such colour holds no drawn text and is not judged.
"""

from __future__ import annotations

import functools
import re
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QRect, QSize, Qt
from PySide6.QtGui import QAccessible, QFontInfo, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollBar,
    QStackedWidget,
    QStyle,
    QStyleOptionButton,
    QStyleOptionFrame,
    QTextEdit,
    QWidget,
)

from ui.theme import contrast

FONT_MIN_PX = 30
CONTRAST_MIN = 7.0
TARGET_MIN_PX = 60
GAP_MIN_PX = 8
STEM_PIXELS = 6  # a colour must cover this many pixels of a region to count as drawn text
MORE_BUTTON = "page_more"  # objectName of the button that shows the next part of a long page
PREVIOUS_BUTTON = "page_previous"
MAX_SUBPAGES = 12
MORE_WORDS = re.compile(r"\bmore\b|next page|更多|下一页", re.IGNORECASE)

# The rules, as they appear in reports.
FONT = "font-size"
CONTRAST = "contrast"
TARGET_SIZE = "target-size"
TARGET_GAP = "target-gap"
OUTSIDE_WINDOW = "outside-window"
CLIPPED = "clipped-by-parent"
TEXT_CUT = "text-cut"
SCROLL_BAR = "scroll-bar"
NAME = "accessible-name"
SPOKEN = "spoken-text"
FITS_PANEL = "fits-panel"
RULES = (
    FONT, CONTRAST, TARGET_SIZE, TARGET_GAP, OUTSIDE_WINDOW, CLIPPED, TEXT_CUT, SCROLL_BAR, NAME,
    SPOKEN, FITS_PANEL,
)

CHROME = "shell"  # what the window shows around every page: the header, banners, status line


@dataclass(frozen=True, slots=True)
class Context:
    """Where a page was seen."""

    page: str = ""
    size: str = ""
    language: str = ""
    step: int = 0


@dataclass(frozen=True, slots=True)
class Violation:
    page: str
    size: str
    language: str
    step: int
    rule: str
    widget: str
    measured: str
    limit: str
    rect: str = ""  # x,y width×height in the window

    def key(self) -> tuple[str, ...]:
        return (self.page, self.size, self.language, str(self.step), self.rule, self.widget,
                self.rect)


@dataclass(frozen=True, slots=True)
class Shot:
    path: str
    page: str
    size: str
    language: str
    step: int
    violations: int


class Tally(Counter[str]):
    """How many of each check were made, and the closest call of each rule (value, where)."""

    def __init__(self) -> None:
        super().__init__()
        self.closest: dict[str, tuple[float, str]] = {}

    def measure(self, rule: str, value: float, where: Context, widget: QWidget) -> None:
        held = self.closest.get(rule)
        if held is None or value < held[0]:
            self.closest[rule] = (
                value, f"{where.page} {where.size} {where.language} s{where.step}: "
                f"{describe(widget)}",
            )


def _measure(counts: Counter[str], rule: str, value: float, where: Context, w: QWidget) -> None:
    if isinstance(counts, Tally):
        counts.measure(rule, value, where, w)


@dataclass
class Report:
    items: list[Violation] = field(default_factory=list)
    checked: Tally = field(default_factory=Tally)
    notes: list[str] = field(default_factory=list)
    shots: list[Shot] = field(default_factory=list)
    pages: list[Context] = field(default_factory=list)  # every page audited, in order
    _seen: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    @property
    def violations(self) -> int:
        return len(self.items)

    def add(self, found: Iterable[Violation]) -> int:
        """Record what is new (the header seen again on the next page is not); how many were."""
        added = 0
        for item in found:
            if item.key() not in self._seen:
                self._seen.add(item.key())
                self.items.append(item)
                added += 1
        return added

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def by_rule(self) -> Counter[str]:
        return Counter(v.rule for v in self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "violations": self.violations,
            "checked": dict(sorted(self.checked.items())),
            "by_rule": dict(self.by_rule().most_common()),
            "closest": {
                rule: {"value": round(value, 2), "where": where}
                for rule, (value, where) in sorted(self.checked.closest.items())
            },
            "notes": list(self.notes),
            "items": [asdict(v) for v in self.items],
        }


# -- what a widget is -------------------------------------------------------------------------
def own_text(widget: QWidget) -> str:
    """The text the widget itself draws (a button's label drawn by a child label is the child's)."""
    if isinstance(widget, QAbstractButton):
        return QAbstractButton.text(widget)  # the C++ text, not a Python override
    if isinstance(widget, QLabel):
        return "" if _has_picture(widget) else widget.text()
    if isinstance(widget, QLineEdit):
        return widget.text() or widget.placeholderText()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QTextEdit | QPlainTextEdit):
        return widget.toPlainText()
    return ""


def _has_picture(label: QLabel) -> bool:
    pixmap = label.pixmap()
    return pixmap is not None and not pixmap.isNull()


def is_text_widget(widget: QWidget) -> bool:
    """Shows text a person reads: a label or button with text, or any field one types into."""
    if isinstance(widget, QLineEdit | QAbstractSpinBox | QComboBox | QTextEdit | QPlainTextEdit):
        return True
    return isinstance(widget, QLabel | QAbstractButton) and bool(own_text(widget).strip())


def is_target(widget: QWidget) -> bool:
    """Something a person touches: a button, a field, or any other widget that takes focus."""
    if isinstance(widget, QScrollBar):
        return False  # scroll bars have their own rule: there should be none
    if isinstance(widget, QAbstractButton | QLineEdit | QAbstractSpinBox | QComboBox):
        return True
    if isinstance(widget, QAbstractSlider):
        return True
    if isinstance(widget, QAbstractScrollArea | QStackedWidget):
        return isinstance(widget, QTextEdit | QPlainTextEdit)
    if widget.parentWidget() is not None and isinstance(
        widget.parentWidget(), QAbstractScrollArea
    ):
        return False  # a scroll area's viewport
    policy = widget.focusPolicy()
    focusable = bool(policy.value & Qt.FocusPolicy.ClickFocus.value)
    return focusable and not any(is_target(c) for c in widget.findChildren(QWidget))


def describe(widget: QWidget) -> str:
    name = f"#{widget.objectName()}" if widget.objectName() else ""
    text = own_text(widget) or widget.accessibleName()
    if not text and hasattr(widget, "text"):
        try:
            value = widget.text()
        except TypeError:
            value = ""
        text = value if isinstance(value, str) else ""
    text = " / ".join(part for part in text.split("\n") if part)
    if len(text) > 40:
        text = text[:39] + "…"
    where = ""
    parent = widget.parentWidget()
    while parent is not None:
        if type(parent).__module__ != "PySide6.QtWidgets" or parent.objectName():
            pname = f"#{parent.objectName()}" if parent.objectName() else ""
            where = f" in {type(parent).__name__}{pname}"
            break
        parent = parent.parentWidget()
    shown = f' "{text}"' if text else ""
    return f"{type(widget).__name__}{name}{shown}{where}"


def window_rect(widget: QWidget, window: QWidget) -> QRect:
    if widget is window:
        return QRect(0, 0, window.width(), window.height())
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def _rect_text(rect: QRect) -> str:
    return f"{rect.x()},{rect.y()} {rect.width()}×{rect.height()}"


def visible_tree(root: QWidget) -> list[QWidget]:
    return [w for w in [root, *root.findChildren(QWidget)] if w.isVisible()]


def chrome_of(page: QWidget, window: QWidget) -> list[QWidget]:
    """Visible widgets of the window outside the page stack that holds `page`."""
    stack = page.parentWidget()
    if page is window or not isinstance(stack, QStackedWidget):
        return []
    return [
        w
        for w in window.findChildren(QWidget)
        if w.isVisible()
        and w is not stack
        and not stack.isAncestorOf(w)
        and not w.isAncestorOf(stack)
    ]


# -- the checks -------------------------------------------------------------------------------
def _violation(  # noqa: PLR0917 - one row of the report, in the order of its columns
    where: Context, rule: str, widget: QWidget | None, measured: str, limit: str,
    rect: QRect | None = None,
) -> Violation:
    return Violation(
        page=where.page, size=where.size, language=where.language, step=where.step, rule=rule,
        widget="" if widget is None else describe(widget), measured=measured, limit=limit,
        rect="" if rect is None else _rect_text(rect),
    )


def check_font_sizes(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    found = []
    for w in widgets:
        if not is_text_widget(w):
            continue
        w.ensurePolished()
        px = QFontInfo(w.font()).pixelSize()
        counts["font sizes"] += 1
        _measure(counts, FONT, px, where, w)
        if px < FONT_MIN_PX:
            found.append(_violation(where, FONT, w, f"{px} px", f">= {FONT_MIN_PX} px",
                                    window_rect(w, window)))
    return found


def _text_area(widget: QWidget) -> QRect:
    """The part of the widget inside its border and padding, where its text is drawn."""
    if isinstance(widget, QPushButton):
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        return widget.style().subElementRect(
            QStyle.SubElement.SE_PushButtonContents, option, widget
        )
    if isinstance(widget, QLineEdit):
        frame = QStyleOptionFrame()
        widget.initStyleOption(frame)
        return widget.style().subElementRect(
            QStyle.SubElement.SE_LineEditContents, frame, widget
        )
    return widget.contentsRect()


def _colours(image: QImage, rect: QRect) -> Counter[int]:
    part = image.copy(rect).convertToFormat(QImage.Format.Format_RGB32)
    pixels = array("I")
    pixels.frombytes(bytes(part.constBits())[: part.sizeInBytes()])
    return Counter(pixels)


def _hex(rgb: int) -> str:
    return f"#{rgb & 0xFFFFFF:06x}"


def rendered_contrast(image: QImage, rect: QRect) -> tuple[float, str, str] | None:
    """(ratio, text colour, background) of what is drawn in `rect` of the frame; None when
    nothing but the background is drawn there."""
    if rect.isEmpty():
        return None
    counts = _colours(image, rect)
    if len(counts) < 2:
        return None
    background, _n = counts.most_common(1)[0]
    bg = _hex(background)
    candidates = [c for c, n in counts.items() if n >= STEM_PIXELS and c != background]
    if not candidates:
        return None
    ratio, text = max((contrast(_hex(c), bg), _hex(c)) for c in candidates)
    return ratio, text, bg


def check_contrast(
    widgets: Sequence[QWidget], window: QWidget, image: QImage, where: Context,
    counts: Counter[str],
) -> list[Violation]:
    found = []
    scale = image.devicePixelRatio() or 1.0
    for w in widgets:
        if not is_text_widget(w) or not own_text(w).strip():
            continue
        area = _text_area(w) & w.visibleRegion().boundingRect()
        if area.isEmpty():
            continue
        top_left = w.mapTo(window, area.topLeft())
        rect = QRect(
            round(top_left.x() * scale), round(top_left.y() * scale),
            round(area.width() * scale), round(area.height() * scale),
        ) & image.rect()
        measured = rendered_contrast(image, rect)
        if measured is None:
            continue
        counts["contrast"] += 1
        ratio, text, bg = measured
        _measure(counts, CONTRAST, ratio, where, w)
        if ratio < CONTRAST_MIN:
            found.append(_violation(
                where, CONTRAST, w, f"{ratio:.2f}:1 ({text} on {bg})", f">= {CONTRAST_MIN:g}:1",
                window_rect(w, window),
            ))
    return found


def check_targets(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    found = []
    for w in widgets:
        if not is_target(w):
            continue
        counts["targets"] += 1
        _measure(counts, TARGET_SIZE, min(w.width(), w.height()), where, w)
        if w.width() < TARGET_MIN_PX or w.height() < TARGET_MIN_PX:
            found.append(_violation(
                where, TARGET_SIZE, w, f"{w.width()}×{w.height()} px",
                f">= {TARGET_MIN_PX}×{TARGET_MIN_PX} px", window_rect(w, window),
            ))
    return found


def gap_between(a: QRect, b: QRect) -> int:
    """Free space between two rectangles: along the axis that separates them, the larger."""
    dx = max(0, b.x() - (a.x() + a.width()), a.x() - (b.x() + b.width()))
    dy = max(0, b.y() - (a.y() + a.height()), a.y() - (b.y() + b.height()))
    return max(dx, dy)


def check_gaps(
    targets: Sequence[tuple[QWidget, Context]], window: QWidget, counts: Counter[str]
) -> list[Violation]:
    found = []
    placed = [(w, where, window_rect(w, window)) for w, where in targets]
    for i, (a, where, ra) in enumerate(placed):
        for b, _where, rb in placed[i + 1:]:
            if a.isAncestorOf(b) or b.isAncestorOf(a):
                continue
            gap = gap_between(ra, rb)
            if gap >= 4 * GAP_MIN_PX:
                continue  # not neighbours
            counts["target gaps"] += 1
            _measure(counts, TARGET_GAP, gap, where, a)
            if gap < GAP_MIN_PX:
                found.append(_violation(
                    where, TARGET_GAP, a, f"{gap} px to {describe(b)}", f">= {GAP_MIN_PX} px", ra,
                ))
    return found


def _leaf_like(widget: QWidget) -> bool:
    if is_text_widget(widget) or is_target(widget):
        return True
    return not any(c.isVisible() for c in widget.findChildren(QWidget))


def _overflow(inner: QRect, outer: QRect) -> str:
    sides = [
        ("left", outer.x() - inner.x()),
        ("top", outer.y() - inner.y()),
        ("right", (inner.x() + inner.width()) - (outer.x() + outer.width())),
        ("bottom", (inner.y() + inner.height()) - (outer.y() + outer.height())),
    ]
    return ", ".join(f"{side} +{px} px" for side, px in sides if px > 0)


def check_clipping(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    """Every visible widget lies inside the window and inside each ancestor that shows it."""
    found = []
    frame = QRect(0, 0, window.width(), window.height())
    for w in widgets:
        if w is window or not _leaf_like(w) or w.width() <= 0 or w.height() <= 0:
            continue
        counts["placements"] += 1
        rect = window_rect(w, window)
        if not frame.contains(rect):
            found.append(_violation(where, OUTSIDE_WINDOW, w, _overflow(rect, frame),
                                    "inside the window", rect))
            continue
        parent = w.parentWidget()
        while parent is not None and parent is not window:
            outer = window_rect(parent, window)
            if not outer.contains(rect):
                found.append(_violation(
                    where, CLIPPED, w, f"{_overflow(rect, outer)} beyond {describe(parent)}",
                    "inside every ancestor", rect,
                ))
                break
            parent = parent.parentWidget()
    return found


def check_text_fits(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    """A label as tall and wide as its text; a button's and a field's text inside its room."""
    found = []
    for w in widgets:
        text = own_text(w)
        if not text.strip():
            continue
        need = ""
        if isinstance(w, QLabel):
            counts["text fits"] += 1
            if w.wordWrap():
                height = w.heightForWidth(w.width())
                if height > w.height():
                    need = f"needs {height} px of height, has {w.height()}"
            else:
                hint = w.sizeHint()
                if hint.width() > w.width() or hint.height() > w.height():
                    need = f"needs {hint.width()}×{hint.height()}, has {w.width()}×{w.height()}"
        elif isinstance(w, QPushButton | QLineEdit):
            counts["text fits"] += 1
            room = _text_area(w)
            lines = text.split("\n")
            metrics = w.fontMetrics()
            width = max(metrics.horizontalAdvance(line) for line in lines)
            height = len(lines) * metrics.lineSpacing() if isinstance(w, QPushButton) else 0
            if width > room.width() or height > room.height():
                shown = f"{width}×{height or metrics.height()}"
                need = f"text {shown}, room {room.width()}×{room.height()}"
        if need:
            found.append(_violation(where, TEXT_CUT, w, need, "all text shown",
                                    window_rect(w, window)))
    return found


def check_scroll_bars(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    found = []
    for w in widgets:
        if isinstance(w, QAbstractScrollArea):
            counts["scroll areas"] += 1
        if isinstance(w, QScrollBar):
            direction = "vertical" if w.orientation() is Qt.Orientation.Vertical else "horizontal"
            owner = w.parentWidget()
            while owner is not None and not isinstance(owner, QAbstractScrollArea):
                owner = owner.parentWidget()
            found.append(_violation(
                where, SCROLL_BAR, owner or w,
                f"{direction} scroll bar, {w.maximum() - w.minimum()} px hidden",
                "no scrolling on citizen pages", window_rect(w, window),
            ))
    return found


def accessible_name(widget: QWidget) -> str:
    """The name a screen reader gets over AT-SPI: Qt's accessible interface's Name text, which is
    accessibleName() when set and otherwise what the control shows (a button's text)."""
    iface = QAccessible.queryAccessibleInterface(widget)
    name = iface.text(QAccessible.Text.Name) if iface is not None else ""
    return (name or widget.accessibleName()).strip()


def check_names(
    widgets: Sequence[QWidget], window: QWidget, where: Context, counts: Counter[str]
) -> list[Violation]:
    found = []
    for w in widgets:
        if not is_target(w):
            continue
        counts["accessible names"] += 1
        if not accessible_name(w):
            found.append(_violation(where, NAME, w, "no name", "a name for screen readers",
                                    window_rect(w, window)))
    return found


def check_spoken(page: QWidget, where: Context, counts: Counter[str]) -> list[Violation]:
    counts["spoken texts"] += 1
    spoken: Callable[[], str] | None = getattr(page, "spoken_text", None)
    if not callable(spoken):
        return [_violation(where, SPOKEN, page, "no spoken_text()", "every page is spoken")]
    text = spoken()
    if not isinstance(text, str) or not text.strip():
        return [_violation(where, SPOKEN, page, "nothing to say", "every page is spoken")]
    return []


def check_panel(window: QWidget, panel: QSize | None, where: Context) -> list[Violation]:
    if panel is None:
        return []
    if window.width() > panel.width() or window.height() > panel.height():
        return [_violation(
            where, FITS_PANEL, window, f"window {window.width()}×{window.height()}",
            f"the panel, {panel.width()}×{panel.height()}",
        )]
    return []


def audit_page(
    page: QWidget,
    window: QWidget,
    *,
    context: Context | None = None,
    image: QImage | None = None,
    panel: QSize | None = None,
    counts: Counter[str] | None = None,
) -> list[Violation]:
    """Every rule on the page as shown in the window, and on the window's own widgets around it
    (reported as page "shell"). `image`: the window's frame, grabbed here when not given."""
    where = context or Context(page=type(page).__name__)
    tally: Counter[str] = Counter() if counts is None else counts
    tally["pages"] += 1
    if image is None:
        image = window.grab().toImage()
    groups = [(where, visible_tree(page)), (replace(where, page=CHROME), chrome_of(page, window))]
    found: list[Violation] = []
    targets: list[tuple[QWidget, Context]] = []
    for place, widgets in groups:
        for w in widgets:
            w.ensurePolished()
        tally["widgets"] += len(widgets)
        found += check_font_sizes(widgets, window, place, tally)
        found += check_contrast(widgets, window, image, place, tally)
        found += check_targets(widgets, window, place, tally)
        found += check_clipping(widgets, window, place, tally)
        found += check_text_fits(widgets, window, place, tally)
        found += check_scroll_bars(widgets, window, place, tally)
        found += check_names(widgets, window, place, tally)
        targets += [(w, place) for w in widgets if is_target(w)]
    found += check_gaps(targets, window, tally)
    found += check_spoken(page, where, tally)
    found += check_panel(window, panel, where)
    return found


# -- the walk ---------------------------------------------------------------------------------
SAMPLE_ANSWERS: dict[str, tuple[str, ...]] = {
    "phone": ("13800138000",),
    "date": ("2025-06-01",),
    "number": ("1", "1234", "0427"),
    "id_number": ("11010519491231002X",),
    "text": ("本市幸福路12号3栋502室", "李建国", "0427", "1234"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def save_shot(image: QImage, path: Path, scale: float = 0.5) -> int:
    """A small PNG: scaled, 256 colours (the pages use a dozen), most compression; its size."""
    small = image.scaled(
        max(1, round(image.width() * scale)),
        max(1, round(image.height() * scale)),
        Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    ).convertToFormat(QImage.Format.Format_Indexed8, Qt.ImageConversionFlag.ThresholdDither)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not small.save(str(path), "PNG", 0):  # type: ignore[call-overload]  # str at run time
        raise OSError(f"cannot write {path}")
    return path.stat().st_size


class Walker:
    """Drives one terminal's visit page by page and audits each page as it is shown."""

    def __init__(
        self,
        terminal: Any,
        report: Report,
        shots_dir: Path | None,
        answers: Mapping[str, object] | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        self.terminal = terminal
        self.window = terminal.window
        self.visit = terminal.visit
        self.report = report
        self.shots_dir = shots_dir
        self.answers = dict(answers or {})
        self.timeout_s = timeout_s
        self.where = Context()
        self.panel: QSize | None = None

    # -- waiting and touching ---------------------------------------------------------------
    def wait(self, until: Callable[[], bool], timeout_s: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while not until():
            if time.monotonic() > deadline:
                return False
            QTest.qWait(10)
        return True

    def settle(self) -> None:
        for _ in range(4):
            QCoreApplication.processEvents()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)

    def touch(self, widget: QWidget) -> None:
        """A tap where the widget is; a widget on a part of the page not shown is clicked."""
        if widget.isVisible():
            QTest.mouseClick(widget, Qt.MouseButton.LeftButton)
        elif isinstance(widget, QAbstractButton):
            widget.click()

    def step_is(self, step: Any, page: QWidget | None = None) -> Callable[[], bool]:
        def reached() -> bool:
            return self.visit.session.step is step and (
                page is None or self.window.current_page() is page
            )

        return reached

    # -- auditing -----------------------------------------------------------------------------
    def audit(self, name: str) -> None:
        self.settle()
        self._audit_one(name)
        page = self.window.current_page()
        for number in range(2, MAX_SUBPAGES + 2):
            more = page.findChild(QAbstractButton, MORE_BUTTON)
            if more is None or not (more.isVisible() and more.isEnabled()):
                break
            self.touch(more)
            self.settle()
            self._audit_one(f"{name}~{number}")
        else:
            self.report.note(f"{name}: more than {MAX_SUBPAGES} parts; the rest not audited")

    def _audit_one(self, name: str) -> None:
        where = replace(self.where, page=name)
        if self.panel is not None and self.window.size() != self.panel:
            # A page that needed more room grew the window; each page is judged on the panel.
            self.window.resize(self.panel)
            self.settle()
        page = self.window.current_page()
        self.report.pages.append(where)
        self._unnamed_more(page, name)
        image = self.window.grab().toImage()
        found = audit_page(page, self.window, context=where, image=image, panel=self.panel,
                           counts=self.report.checked)
        new = self.report.add(found)
        if self.shots_dir is not None:
            file = self.shots_dir / (
                f"{where.size}-{where.language}-s{where.step}-{_slug(name)}.png"
            )
            save_shot(image, file)
            self.report.shots.append(Shot(str(file), name, where.size, where.language,
                                          where.step, new))

    def _unnamed_more(self, page: QWidget, name: str) -> None:
        for button in page.findChildren(QAbstractButton):
            if (
                button.isVisible()
                and button.objectName() not in (MORE_BUTTON, PREVIOUS_BUTTON)
                and MORE_WORDS.search(f"{own_text(button)} {accessible_name(button)}")
            ):
                self.report.note(
                    f"{type(page).__name__}: the button {describe(button)} looks like "
                    f'"next part of the page" but is not named "{MORE_BUTTON}": the parts after '
                    "the first were not audited"
                )

    # -- the visit ------------------------------------------------------------------------------
    def to_welcome(self) -> None:
        from kiosk.session import EndReason, Step

        if self.visit.session.active or self.visit.session.step is not Step.WELCOME:
            self.window.end_visit(EndReason.CANCELLED)
        if not self.wait(self.step_is(Step.WELCOME, self.visit.welcome)):
            self.report.note("the welcome page did not come back")
        self.visit.show_welcome_message("")

    def present_card(self) -> bool:
        from kiosk.session import Step

        demo = getattr(self.visit.welcome, "demo_button", None)
        if demo is not None:
            self.touch(demo)
        else:
            self.visit.present_demo_card()
        return self.wait(self.step_is(Step.SERVICES, self.visit.services))

    def all_pages(self) -> None:
        """Welcome, services, then each service's guide, questions, review and receipt, and the
        message page."""
        from kiosk.session import Step

        self.to_welcome()
        self.audit("welcome")
        services = list(self.visit.session.catalogue.services)
        if not services:
            self.report.note("the catalogue has no services")
        for index, service in enumerate(services):
            if not self.present_card():
                self.report.note("the demo card did not open the services page")
                return
            if index == 0:
                self.audit("services")
            self.one_service(index, service)
            self.to_welcome()
        self.settle()
        if self.present_card():
            self.visit.services.chosen.emit("no-such-service")  # as a stale button would
            if self.wait(lambda: self.window.current_page() is self.visit.message):
                self.audit("message")
                home = getattr(self.visit.message, "home_button", None)
                if home is not None:
                    self.touch(home)
                    self.wait(self.step_is(Step.WELCOME, self.visit.welcome))
            else:
                self.report.note("the message page was not shown for an unknown service")
        self.to_welcome()

    def one_service(self, index: int, service: Any) -> None:
        from kiosk.session import Step

        sid = service.id
        buttons = self.visit.services.service_buttons
        if index >= len(buttons):
            self.report.note(f"no button for the service {sid}")
            return
        self.touch(buttons[index])
        if not self.wait(self.step_is(Step.GUIDE, self.visit.guide)):
            self.report.note(f"{sid}: the guide did not open")
            return
        self.audit(f"guide:{sid}")
        self.touch(self.visit.guide.start_button)
        if not self.wait(lambda: self.visit.session.step in (Step.QUESTION, Step.REVIEW)):
            self.report.note(f"{sid}: the questions did not start")
            return
        while self.visit.session.step is Step.QUESTION:
            if not self.one_question(service):
                return
        if not self.wait(self.step_is(Step.REVIEW, self.visit.review)):
            self.report.note(f"{sid}: the review page did not open")
            return
        self.audit(f"review:{sid}")
        self.touch(self.visit.review.submit_button)
        if not self.wait(self.step_is(Step.DONE, self.visit.done)):
            self.report.note(f"{sid}: the receipt page did not open")
            return
        self.audit(f"done:{sid}")
        self.touch(self.visit.done.finish_button)
        self.wait(self.step_is(Step.WELCOME, self.visit.welcome))
        if index == 0:
            self.audit("welcome:after-visit")

    def one_question(self, service: Any) -> bool:
        from kiosk.session import Step

        visit, page = self.visit, self.visit.question
        self.wait(lambda: self.window.current_page() is page)
        question = visit.session.current_question
        number = visit.session.page
        name = f"question:{service.id}:{question.field}"
        self.audit(name)
        if question.widget in ("choice", "yesno"):
            values = (
                ["true", "false"] if question.widget == "yesno"
                else [o.value for o in question.options]
            )
            given = self.answers.get(question.field, values[0])
            wanted = ("true" if given else "false") if isinstance(given, bool) else str(given)
            for value in values:
                choice = page.choices.button_for(value)
                if choice is None:
                    self.report.note(f"{name}: no button for the option {value}")
                    continue
                self.touch(choice)
                self.audit(f"{name}={value}")
            chosen = page.choices.button_for(wanted)
            if chosen is not None:
                self.touch(chosen)
        else:
            self.enter(service, question)
        self.touch(page.next_button)
        moved = self.wait(lambda: not visit.checking and (
            visit.session.step is not Step.QUESTION or visit.session.page != number
            or page.error.isVisible()
        ))
        if not moved or (visit.session.step is Step.QUESTION and visit.session.page == number):
            self.audit(f"{name}:refused")
            self.report.note(f"{name}: no answer the walk could give was accepted")
            return False
        return True

    def enter(self, service: Any, question: Any) -> None:
        """Type a valid answer: on the keypad when it has every key, else as an input method
        commits it; a prefilled valid answer is kept."""
        from kiosk.forms import validate_field

        page = self.visit.question
        line: QLineEdit | None = getattr(page, "line", None)
        if line is None or not line.isVisible():
            return  # a picker: its own value is taken as it stands
        answers = dict(self.visit.session.answers)
        if line.text() and validate_field(service, question.field,
                                          {**answers, question.field: line.text()}) is None:
            return
        given = self.answers.get(question.field)
        candidates = [str(given)] if given is not None else list(
            SAMPLE_ANSWERS.get(question.widget, SAMPLE_ANSWERS["text"])
        )
        value = next(
            (c for c in candidates
             if validate_field(service, question.field, {**answers, question.field: c}) is None),
            candidates[0],
        )
        line.setFocus()
        QTest.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClick(line, Qt.Key.Key_Backspace)
        keypad = getattr(page, "keypad", None)
        keys = getattr(keypad, "buttons", {}) if keypad is not None else {}
        if keys and all(ch in keys for ch in value):
            for ch in value:
                self.touch(keys[ch])
        else:
            from PySide6.QtGui import QInputMethodEvent

            event = QInputMethodEvent()
            event.setCommitString(value)
            QApplication.sendEvent(line, event)


def _has_size(window: QWidget, size: QSize) -> bool:
    return window.size() == size


def _set_language(window: Any, language: str) -> None:
    from kiosk.i18n import current_language, set_language

    if current_language() == language:
        return
    toggle = getattr(window, "toggle_language", None)
    if callable(toggle):
        toggle()  # what the header's language button does
    if current_language() != language:
        set_language(language)
        retranslate = getattr(window, "retranslate", None)
        if callable(retranslate):
            retranslate()

def walk(
    terminal: Any,
    sizes: Sequence[tuple[int, int]],
    languages: Sequence[str],
    steps: Sequence[int],
    shots_dir: Path | None = None,
    *,
    answers: Mapping[str, object] | None = None,
) -> Report:
    """Every page of every service at each panel size, language and text step."""
    from kiosk.i18n import current_language

    report = Report()
    window = terminal.window
    set_step: Callable[[int], None] | None = getattr(window, "set_text_step", None)
    if not callable(set_step):
        report.note(
            "text step control missing: the shell has no set_text_step(int); "
            "only the normal text size was audited"
        )
        steps = list(steps[:1]) or [0]
        set_step = None
    walker = Walker(terminal, report, shots_dir, answers)
    first_language = current_language()
    for width, height in sizes:
        panel = QSize(width, height)
        walker.panel = panel
        window.resize(panel)
        if not walker.wait(functools.partial(_has_size, window, panel), 3.0):
            report.note(
                f"{width}×{height}: the window stayed {window.width()}×{window.height()}"
            )
        for language in languages:
            walker.to_welcome()
            _set_language(window, language)
            for step in steps:
                if set_step is not None:
                    set_step(step)
                walker.where = Context(size=f"{width}x{height}", language=language, step=step)
                walker.settle()
                walker.all_pages()
            if set_step is not None:
                set_step(0)
    walker.to_welcome()
    _set_language(window, first_language)
    return report
