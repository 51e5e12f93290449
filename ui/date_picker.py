"""A date chosen with large buttons, a year, a month and a day at a time: nothing to type."""

from __future__ import annotations

import calendar
import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QVBoxLayout, QWidget

from kiosk.i18n import _
from ui.widgets import ValueButton, label, named

FIRST_YEAR = 1900
YEARS_AHEAD = 5
PARTS = ("year", "month", "day")


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


class DatePicker(QWidget):
    """Year, month and day, each with its own − and + buttons (ten years at a time as well);
    the value reads as YYYY-MM-DD."""

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, today: dt.date | None = None) -> None:
        super().__init__(parent)
        self._today = today or dt.date.today()
        self.last_year = self._today.year + YEARS_AHEAD
        self._date = self._today
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(40)
        self._grid.setVerticalSpacing(14)
        self.captions = {part: label(name="help", wrap=False) for part in PARTS}
        self.values = {part: label(name="question", wrap=False) for part in PARTS}
        self.buttons: dict[str, ValueButton] = {}
        self._units: dict[str, QWidget] = {}
        steps = {"year": ("-10", "-1", "+1", "+10"), "month": ("-1", "+1"), "day": ("-1", "+1")}
        self._unit_rows: dict[str, QHBoxLayout] = {}
        self._unit_columns: dict[str, QVBoxLayout] = {}
        for part in PARTS:
            unit = QWidget(self)
            column = QVBoxLayout(unit)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(4)
            row = QHBoxLayout()
            row.setSpacing(12)
            column.addLayout(row)
            self._unit_rows[part] = row
            self._unit_columns[part] = column
            value = self.values[part]
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            half = len(steps[part]) // 2
            for index, step in enumerate(steps[part]):
                if index == half:
                    row.addWidget(value)
                widget = ValueButton(step.replace("-", "−"), f"{part}:{step}")
                widget.picked.connect(self._step)
                row.addWidget(widget)
                self.buttons[f"{part}:{step}"] = widget
            self._units[part] = unit
        self._rows: tuple[int, bool] = (0, False)
        self.set_rows(3, captions_above=True)
        self._show()

    def fit_width(self, width: int) -> None:
        """The fewest rows that fit this width: the month and the day side by side with each
        caption in its row; else a row each; else each caption above its buttons."""
        widest = max(self._caption_width(p) for p in PARTS)
        for part in PARTS:  # the buttons line up in columns, row under row
            self.captions[part].setMinimumWidth(widest)
        inline = {p: self._caption_width(p) + 12 + self._buttons_width(p) for p in PARTS}
        gap = self._grid.horizontalSpacing()
        width -= 24  # what the estimate leaves out (style margins), rather too much than too little
        if max(inline["year"], inline["month"] + gap + inline["day"]) <= width:
            self.set_rows(2)
        elif max(inline.values()) <= width:
            self.set_rows(3)
        else:
            self.set_rows(3, captions_above=True)

    def _caption_width(self, part: str) -> int:
        caption = self.captions[part]
        caption.ensurePolished()
        return max(caption.sizeHint().width(), caption.minimumWidth())

    def _buttons_width(self, part: str) -> int:
        widgets = [w for key, w in self.buttons.items() if key.startswith(part + ":")]
        value = self.values[part]
        for widget in [*widgets, value]:
            widget.ensurePolished()
        digits = value.fontMetrics().horizontalAdvance("0000" if part == "year" else "00")
        value.setMinimumWidth(digits)  # the buttons stay put as the number changes
        shown = max(digits, value.sizeHint().width())
        return sum(w.sizeHint().width() for w in widgets) + shown + 12 * len(widgets)

    def set_rows(self, rows: int, *, captions_above: bool = False) -> None:
        """Three rows (year, month, day), or two (the month and the day side by side, leaving
        the question its room on a landscape panel); captions beside or above their buttons."""
        if (rows, captions_above) == self._rows:
            return
        self._rows = (rows, captions_above)
        for part, unit in self._units.items():
            self._grid.removeWidget(unit)
            caption = self.captions[part]
            self._unit_rows[part].removeWidget(caption)
            self._unit_columns[part].removeWidget(caption)
            if captions_above:  # a narrow panel: the height to spare, not the width
                self._unit_columns[part].insertWidget(0, caption)
            else:
                self._unit_rows[part].insertWidget(0, caption)
        left = Qt.AlignmentFlag.AlignLeft
        if rows == 2:
            self._grid.addWidget(self._units["year"], 0, 0, 1, 2, left)
            self._grid.addWidget(self._units["month"], 1, 0, left)
            self._grid.addWidget(self._units["day"], 1, 1, left)
        else:
            for index, part in enumerate(PARTS):
                self._grid.addWidget(self._units[part], index, 0, left)
        self._grid.setColumnStretch(2, 1)

    def set_value(self, text: str | None) -> None:
        """Start from this date (YYYY-MM-DD), or today when there is none."""
        date = parse_date(text) if text else None
        self._date = self._clamp(date or self._today)
        self._show()

    def value(self) -> str:
        return self._date.isoformat()

    def _clamp(self, date: dt.date) -> dt.date:
        return min(max(date, dt.date(FIRST_YEAR, 1, 1)), dt.date(self.last_year, 12, 31))

    def _step(self, what: str) -> None:
        part, step = what.split(":")
        amount = int(step)
        year, month, day = self._date.year, self._date.month, self._date.day
        if part == "year":
            year = min(max(year + amount, FIRST_YEAR), self.last_year)
        elif part == "month":
            month = (month - 1 + amount) % 12 + 1  # round the year: December follows January
        else:
            last = calendar.monthrange(year, month)[1]
            day = (day - 1 + amount) % last + 1
        day = min(day, calendar.monthrange(year, month)[1])
        self._date = self._clamp(dt.date(year, month, day))
        self._show()
        self.changed.emit(self.value())

    def _show(self) -> None:
        date = self._date
        self.captions["year"].setText(_("Year"))
        self.captions["month"].setText(_("Month"))
        self.captions["day"].setText(_("Day"))
        self.values["year"].setText(str(date.year))
        self.values["month"].setText(str(date.month))
        self.values["day"].setText(str(date.day))
        names = {
            "year:-10": _("Ten years earlier"),
            "year:-1": _("One year earlier"),
            "year:+1": _("One year later"),
            "year:+10": _("Ten years later"),
            "month:-1": _("One month earlier"),
            "month:+1": _("One month later"),
            "day:-1": _("One day earlier"),
            "day:+1": _("One day later"),
        }
        now = _("The date chosen: {date}").format(date=self.value())
        for key, widget in self.buttons.items():
            named(widget, names[key], now)
        # each number read with its unit ("2026年", "Year 2026"), the whole date described
        said = {
            "year": _("Year {number}").format(number=date.year),
            "month": _("Month {number}").format(number=date.month),
            "day": _("Day {number}").format(number=date.day),
        }
        for part in PARTS:
            named(self.values[part], said[part], now)

    def spoken_text(self) -> str:
        return _("The date chosen: {date}").format(date=self.value())
