"""The on-screen keyboard for typing Chinese by touch: Qt Virtual Keyboard with its Pinyin method.

The keyboard's InputPanel is a QML item; it lives in a QQuickWidget that is a child of this
widget, so it is drawn inside the terminal's window (fullscreen included) and never as a floating
window of its own. The page that holds it says which text field it serves (`set_target`); the
keyboard shows only for a field that asks for text, never for a field of digits, which has its
own keypad on the page.

Qt reads the input method from the environment when the QApplication is made, so
`prepare_environment()` must run first (main.py, the test conftest, benchmarks).

A physical keyboard keeps working unchanged: the virtual keyboard's input context looks at key
presses on the focused field only while a pinyin composition is open; then a hardware Backspace
or Delete clears the composition and any other key commits it first (Qt's own behaviour,
qvirtualkeyboardinputcontext_p.cpp, filterEvent). Without a composition, hardware keys and
input-method events reach the field exactly as without the keyboard.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from PySide6.QtCore import QEvent, QLoggingCategory, QMetaObject, QObject, QSize, Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtQuick import QQuickItem
from PySide6.QtQuickWidgets import QQuickWidget
from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

from kiosk.i18n import _
from ui.input_environment import QUIET_CATEGORIES as _QUIET_CATEGORIES
from ui.input_environment import prepare_environment

__all__ = ["PANEL_HEIGHT", "PinyinKeyboard", "prepare_environment", "wants_text_keyboard"]

log = logging.getLogger(__name__)

QML_DIR = Path(__file__).resolve().parent / "qml"
PANEL_QML = QML_DIR / "pinyin_panel.qml"
PANEL_HEIGHT = 520  # the band at the bottom of the window the keyboard is given
KEYBOARD_LOCALES = {"zh_CN": "zh_CN", "en": "en_GB"}

# Fields that take digits only get the page's keypad, not this keyboard.
NUMERIC_HINTS = (
    Qt.InputMethodHint.ImhDigitsOnly
    | Qt.InputMethodHint.ImhFormattedNumbersOnly
    | Qt.InputMethodHint.ImhDialableCharactersOnly
)

def _load_multimedia_here() -> None:
    """Load Qt Multimedia on the GUI thread before the panel's QML is read.

    The keyboard's QML imports QtMultimedia (key sounds). Loaded first by the QML loader thread,
    Qt Multimedia logs from that thread (a missing pipewire library) while setSource() holds
    the Python interpreter lock on the GUI thread; a Python message handler (pytest-qt installs
    one) then waits for the lock forever. Loaded here, it logs on the GUI thread.
    """
    importlib.import_module("PySide6.QtMultimedia")
    # The rule is in prepare_environment() too, but Qt reads QT_LOGGING_RULES once, when the
    # first message is logged, which may have been before.
    QLoggingCategory.setFilterRules("\n".join(_QUIET_CATEGORIES))


def wants_text_keyboard(line: QLineEdit) -> bool:
    """A field asks for this keyboard unless its hints say digits (its page shows a keypad)."""
    return not (line.inputMethodHints() & NUMERIC_HINTS) and not line.isReadOnly()


class PinyinKeyboard(QWidget):
    """The keyboard band of a page: pinyin and its candidates in Chinese, letters in English."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("pinyin_keyboard")
        self._language = "zh_CN"
        self._target: QLineEdit | None = None
        self._view = QQuickWidget(self)
        self._view.setObjectName("pinyin_keyboard_view")
        # A touch on a key must not take the focus from the field being typed into.
        self._view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._view.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self._view.setResizeMode(QQuickWidget.ResizeMode.SizeRootObjectToView)
        if os.environ.get("QT_IM_MODULE") != "qtvirtualkeyboard":
            log.error("QT_IM_MODULE is not qtvirtualkeyboard: the keys will type nothing")
        _load_multimedia_here()
        self._view.engine().addImportPath(str(QML_DIR))
        self._view.rootContext().setContextProperty("hallLabels", self._labels())
        self._view.setSource(QUrl.fromLocalFile(str(PANEL_QML)))
        if self._view.status() != QQuickWidget.Status.Ready:
            errors = "; ".join(error.toString() for error in self._view.errors())
            raise RuntimeError(f"the keyboard panel did not load: {errors}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self.retranslate()
        app = QApplication.instance()
        if isinstance(app, QGuiApplication):
            app.focusObjectChanged.connect(self._focus_moved)
        QGuiApplication.inputMethod().visibleChanged.connect(self._input_method_visibility)
        self.hide()

    # -- what a page asks of it ----------------------------------------------------------------

    def set_language(self, language: str) -> None:
        """Pinyin with a candidate bar for zh_CN, plain latin letters for en."""
        self._language = language if language in KEYBOARD_LOCALES else "zh_CN"
        self.wipe()
        self.root().setProperty("keyboardLocale", KEYBOARD_LOCALES[self._language])
        self.retranslate()

    def language(self) -> str:
        return self._language

    def set_target(self, line: QLineEdit | None) -> None:
        """Serve `line` (focus it and show), or nobody (hide). Fields of digits are not served."""
        served = line if line is not None and wants_text_keyboard(line) else None
        if self._target is not served:
            self.wipe()  # a composition never moves from one field to another
            if self._target is not None:
                self._target.destroyed.disconnect(self._target_gone)
            self._target = served
            if served is not None:
                served.destroyed.connect(self._target_gone)
        if served is None:
            self.hide()
            return
        self.show()
        served.setFocus(Qt.FocusReason.OtherFocusReason)
        # The field may have had the focus all along (a mode button takes none): the input
        # context learns of it, and of its hints, now rather than at the next focus change.
        QGuiApplication.inputMethod().update(Qt.InputMethodQuery.ImQueryAll)
        QGuiApplication.inputMethod().show()

    def target(self) -> QLineEdit | None:
        return self._target

    def wipe(self) -> None:
        """Forget the composition, the candidates and the predictions; nothing is committed."""
        QMetaObject.invokeMethod(self.root(), "wipe")

    def retranslate(self) -> None:
        self._view.rootContext().setContextProperty("hallLabels", self._labels())
        self.setAccessibleName(_("Pinyin keyboard") if self._language == "zh_CN" else _("Keyboard"))
        self.setAccessibleDescription(self.spoken_text())
        self._view.setAccessibleName(self.accessibleName())

    def spoken_text(self) -> str:
        if self._language == "zh_CN":
            return _("Touch the letters of the pinyin, then choose the character above the keys.")
        return _("Touch the letters one at a time.")

    def sizeHint(self) -> QSize:
        parent = self.parentWidget()
        return QSize(parent.width() if parent is not None else 1080, PANEL_HEIGHT)

    # -- for tests and benchmarks: the QML side --------------------------------------------------

    def view(self) -> QQuickWidget:
        return self._view

    def root(self) -> QQuickItem:
        root = self._view.rootObject()
        if root is None:  # loaded in __init__ or it raised; deleted since
            raise RuntimeError("the keyboard panel is gone")
        return root

    def key_items(self) -> dict[str, QQuickItem]:
        """The visible keys of the current layout by their text (letters, punctuation)."""
        keys: dict[str, QQuickItem] = {}
        pending = list(self.root().childItems())
        while pending:
            item = pending.pop()
            pending.extend(item.childItems())
            text = item.property("text")
            if (
                isinstance(text, str)
                and text
                and item.property("keyType") is not None
                and item.isVisible()
            ):
                keys.setdefault(text, item)
        return keys

    def candidate_items(self) -> list[QQuickItem]:
        """The candidate buttons in the bar, left to right."""
        found = [
            item
            for item in self._all_items()
            if item.objectName() == "candidate" and item.isVisible()
        ]
        return sorted(found, key=lambda item: item.mapToScene(item.position()).x())

    def candidates(self) -> list[str]:
        return [str(item.property("text")) for item in self.candidate_items()]

    def candidate_count(self) -> int:
        return int(self.root().property("candidateCount") or 0)

    def preedit_text(self) -> str:
        return str(self.root().property("preeditText") or "")

    def _all_items(self) -> list[QQuickItem]:
        items: list[QQuickItem] = []
        pending = list(self.root().childItems())
        while pending:
            item = pending.pop()
            items.append(item)
            pending.extend(item.childItems())
        return items

    # -- inside ---------------------------------------------------------------------------------

    @staticmethod
    def _labels() -> dict[str, str]:
        return {
            "space": _("Space"),
            "backspace": _("Delete"),
            "enter": _("OK"),
            # the keys between letters and digits say where they lead, not "&123" and "ABC"
            "to_digits": _("Digits"),
            "to_letters": _("Letters"),
        }

    def _focus_moved(self, told: QObject | None) -> None:
        if self._target is None:
            return
        focus = QApplication.focusObject()
        if focus is self._target and told is not focus:
            # Qt told its input context about another object than the application's focus
            # (QTBUG-138256; seen here when windows come and go): the keyboard would type into
            # nothing. Tell it again, through the focus window's own signal.
            window = QGuiApplication.focusWindow()
            if window is not None:
                window.focusObjectChanged.emit(focus)
            return
        if focus is self._target:
            if not self.isVisible():
                self.show()
                QGuiApplication.inputMethod().show()
        elif isinstance(focus, QWidget) and focus.window() is self.window():
            self.wipe()
            self.hide()

    def _input_method_visibility(self) -> None:
        # The panel's keys only work while Qt's input method is "visible"; keep it so while a
        # field is served (a field or Qt may hide it, e.g. on Return).
        if (
            self._target is not None
            and self.isVisible()
            and QApplication.focusObject() is self._target
            and not QGuiApplication.inputMethod().isVisible()
        ):
            QGuiApplication.inputMethod().show()

    def _target_gone(self) -> None:
        self._target = None
        self.hide()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        return super().event(event)
