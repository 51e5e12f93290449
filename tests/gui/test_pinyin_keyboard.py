"""The pinyin keyboard, driven the way a finger drives it: taps on its keys and candidates.

The real Qt Virtual Keyboard runs here (its Pinyin engine included); every key and candidate is
found in the QML tree of the panel and pressed with mouse events on the QQuickWidget at its
centre, the path a touch takes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFont, QGuiApplication, QInputMethodEvent
from PySide6.QtQuick import QQuickItem
from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kiosk.i18n import set_language
from ui.pinyin_keyboard import PANEL_HEIGHT, PinyinKeyboard, prepare_environment

# Before any QApplication exists (modules are imported before the first test runs).
prepare_environment()

# The pinyin engine says so when it first creates its (unused) user dictionary folder.
pytestmark = pytest.mark.qt_log_ignore(
    "PinyinDecoderService::init", "depends on non-bindable properties", "QLineEdit::echoMode"
)


class Page(QWidget):
    """A page as the kiosk lays it out: the question's field on top, the keyboard at the bottom."""

    def __init__(self, width: int) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit(self)
        self.other = QLineEdit(self)
        self.button = QPushButton("Next", self)
        layout.addWidget(self.line)
        layout.addWidget(self.other)
        layout.addWidget(self.button)
        layout.addStretch(1)
        self.keyboard = PinyinKeyboard(self)
        self.keyboard.setFixedHeight(PANEL_HEIGHT)
        layout.addWidget(self.keyboard)
        self.resize(width, 1000)


@pytest.fixture
def page(qtbot: QtBot) -> Iterator[Page]:
    made = Page(1080)
    qtbot.addWidget(made)
    made.show()
    qtbot.waitExposed(made)
    yield made
    made.keyboard.set_target(None)


def tap(qtbot: QtBot, keyboard: PinyinKeyboard, item: QQuickItem) -> None:
    """A finger on the middle of a key or candidate: press and release on the QQuickWidget."""
    centre = item.mapToScene(item.boundingRect().center())
    at = QPoint(round(centre.x()), round(centre.y()))
    assert keyboard.view().rect().contains(at), "the item is outside the keyboard"
    qtbot.mouseClick(keyboard.view(), Qt.MouseButton.LeftButton, pos=at)


def tap_letters(qtbot: QtBot, keyboard: PinyinKeyboard, letters: str) -> None:
    # The layout is built when the panel is first shown at its size.
    qtbot.waitUntil(lambda: set(letters) <= set(keyboard.key_items()), timeout=3000)
    keys = keyboard.key_items()
    for letter in letters:
        tap(qtbot, keyboard, keys[letter])


def candidate(keyboard: PinyinKeyboard, text: str) -> QQuickItem | None:
    for item in keyboard.candidate_items():
        if item.property("text") == text:
            return item
    return None


def test_tapping_ni_hao_offers_and_types_nihao(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    assert keyboard.isVisible()
    assert QGuiApplication.focusObject() is page.line
    tap_letters(qtbot, keyboard, "nihao")
    qtbot.waitUntil(lambda: candidate(keyboard, "你好") is not None, timeout=3000)
    assert keyboard.candidate_count() > 1
    assert keyboard.preedit_text().replace(" ", "") == "nihao"
    assert page.line.text() == ""  # still a composition, not text
    choice = candidate(keyboard, "你好")
    assert choice is not None
    tap(qtbot, keyboard, choice)
    qtbot.waitUntil(lambda: page.line.text() == "你好", timeout=3000)
    assert keyboard.preedit_text() == ""


def test_english_mode_types_latin_letters_without_candidates(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_language("en")
    keyboard.set_target(page.line)
    qtbot.waitUntil(lambda: "/zh_CN/" not in str(keyboard.root().property("keyboardLayout")))
    tap_letters(qtbot, keyboard, "lin")
    qtbot.waitUntil(lambda: len(page.line.text()) == 3, timeout=3000)
    assert page.line.text().lower() == "lin"
    assert keyboard.candidate_count() == 0
    assert keyboard.preedit_text() == ""
    keyboard.set_language("zh_CN")  # and back to pinyin
    qtbot.waitUntil(lambda: "/zh_CN/" in str(keyboard.root().property("keyboardLayout")))
    tap_letters(qtbot, keyboard, "ni")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)


@pytest.mark.parametrize(
    "hint",
    [
        Qt.InputMethodHint.ImhDigitsOnly,
        Qt.InputMethodHint.ImhDialableCharactersOnly,
        Qt.InputMethodHint.ImhFormattedNumbersOnly,
    ],
)
def test_a_field_of_digits_does_not_show_the_keyboard(page: Page, hint: Qt.InputMethodHint) -> None:
    page.line.setInputMethodHints(hint)
    page.keyboard.set_target(page.line)
    assert not page.keyboard.isVisible()
    assert page.keyboard.target() is None
    page.keyboard.set_target(page.other)  # a text field does
    assert page.keyboard.isVisible()
    page.keyboard.set_target(None)
    assert not page.keyboard.isVisible()


def test_wipe_leaves_no_composition_and_nothing_is_committed(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    tap_letters(qtbot, keyboard, "zhang")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)
    assert keyboard.preedit_text() != ""
    keyboard.wipe()
    assert keyboard.preedit_text() == ""
    assert keyboard.candidate_count() == 0
    assert keyboard.candidates() == []
    page.other.setFocus()  # moving on commits an open composition; there is none left
    assert page.line.text() == ""


def test_without_wipe_a_moved_focus_commits_the_composition(qtbot: QtBot, page: Page) -> None:
    """Why the shell must wipe the keyboard before it moves focus or clears fields."""
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    tap_letters(qtbot, keyboard, "zhang")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)
    page.other.setFocus()
    assert page.line.text() != ""


def test_the_bar_is_empty_once_a_character_is_chosen(qtbot: QtBot, page: Page) -> None:
    """No predictions: nothing in the bar hints at what was typed, and one thing at a time."""
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    tap_letters(qtbot, keyboard, "nihao")
    qtbot.waitUntil(lambda: candidate(keyboard, "你好") is not None, timeout=3000)
    choice = candidate(keyboard, "你好")
    assert choice is not None
    tap(qtbot, keyboard, choice)
    qtbot.waitUntil(lambda: page.line.text() == "你好", timeout=3000)
    assert keyboard.candidate_count() == 0
    qtbot.waitUntil(lambda: keyboard.candidate_items() == [], timeout=3000)


@pytest.mark.parametrize("width", [1080, 1280])
def test_the_keyboard_fits_its_band_with_large_keys(qtbot: QtBot, width: int) -> None:
    made = Page(width)
    qtbot.addWidget(made)
    made.show()
    qtbot.waitExposed(made)
    keyboard = made.keyboard
    keyboard.set_target(made.line)
    tap_letters(qtbot, keyboard, "ni")
    qtbot.waitUntil(lambda: len(keyboard.candidate_items()) > 0, timeout=3000)
    view = keyboard.view()
    assert keyboard.geometry().width() == width
    assert keyboard.height() == PANEL_HEIGHT
    assert made.rect().contains(keyboard.geometry())
    assert view.geometry() == keyboard.rect()
    band = view.rect()
    keys = keyboard.key_items()
    assert set("abcdefghijklmnopqrstuvwxyz") <= set(keys)
    for key in keys.values():
        box = key.mapRectToScene(key.boundingRect()).toAlignedRect()
        assert band.contains(box), f"key {key.property('text')!r} at {box} is outside {band}"
        assert box.width() >= 68 and box.height() >= 68  # 60 px face plus the 8 px gap
    for text in text_items(keys["a"]):
        assert text.property("font").pixelSize() >= 36
    bar = keyboard.root().findChild(QQuickItem, "wordCandidateView")
    assert bar is not None
    bar_box = bar.mapRectToScene(bar.boundingRect()).toAlignedRect()
    assert bar_box.height() >= 80
    assert band.contains(bar_box)
    first = keyboard.candidate_items()[0]
    assert first.width() >= 60
    labels = text_items(first)
    assert labels and all(t.property("font").pixelSize() >= 40 for t in labels)
    # the letters' row fills the width: a wider window gives wider keys
    assert keys["q"].width() >= (width - 16) / 10 - 2


def text_items(item: QQuickItem) -> list[QQuickItem]:
    found: list[QQuickItem] = []
    pending = [item]
    while pending:
        current = pending.pop()
        font = current.property("font")
        if isinstance(font, QFont) and isinstance(current.property("text"), str):
            found.append(current)
        pending.extend(current.childItems())
    return found


def test_hardware_keys_still_type_into_the_field(qtbot: QtBot, page: Page) -> None:
    """Staff type on a physical keyboard while the pinyin keyboard is up: nothing changes."""
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    qtbot.keyClicks(page.line, "abc 123")
    assert page.line.text() == "abc 123"
    assert keyboard.preedit_text() == ""
    assert keyboard.candidate_count() == 0
    qtbot.keyClick(page.line, Qt.Key.Key_Backspace)
    assert page.line.text() == "abc 12"
    with qtbot.waitSignal(page.line.returnPressed, timeout=1000):
        qtbot.keyClick(page.line, Qt.Key.Key_Return)
    assert keyboard.isVisible()  # Return does not close the keyboard
    assert QGuiApplication.inputMethod().isVisible()
    event = QInputMethodEvent()
    event.setCommitString("张")
    QGuiApplication.sendEvent(page.line, event)
    assert page.line.text() == "abc 12张"


def test_a_hardware_key_during_a_composition_commits_it_first(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    tap_letters(qtbot, keyboard, "ni")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)
    first = keyboard.candidates()[0]
    qtbot.keyClicks(page.line, "x")
    assert page.line.text() == first + "x"
    assert keyboard.preedit_text() == ""


def test_hardware_backspace_during_a_composition_drops_it(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    page.line.setText("王")
    tap_letters(qtbot, keyboard, "ni")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)
    qtbot.keyClick(page.line, Qt.Key.Key_Backspace)
    assert keyboard.preedit_text() == ""
    assert page.line.text() == "王"  # the composition went, the text before it stayed


def test_touch_backspace_and_enter_keys(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    tap_letters(qtbot, keyboard, "nih")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)
    keys = keyboard.key_items()
    backspace = [k for k in keyboard_items(keyboard) if k.property("key") == Qt.Key.Key_Backspace]
    assert backspace
    tap(qtbot, keyboard, backspace[0])
    qtbot.waitUntil(lambda: keyboard.preedit_text().replace(" ", "") == "ni", timeout=3000)
    with qtbot.waitSignal(page.line.returnPressed, timeout=3000):
        tap(qtbot, keyboard, keyboard.candidate_items()[0])
        tap(qtbot, keyboard, keys["\n"])
    assert page.line.text() != ""


def keyboard_items(keyboard: PinyinKeyboard) -> list[QQuickItem]:
    items: list[QQuickItem] = []
    pending = [keyboard.root()]
    while pending:
        current = pending.pop()
        if current.property("keyType") is not None and current.isVisible():
            items.append(current)
        pending.extend(current.childItems())
    return items


def test_follows_the_focus_of_its_page(qtbot: QtBot, page: Page) -> None:
    keyboard = page.keyboard
    keyboard.set_target(page.line)
    page.button.setFocus()
    assert not keyboard.isVisible()
    page.line.setFocus()
    assert keyboard.isVisible()
    tap_letters(qtbot, keyboard, "ni")
    qtbot.waitUntil(lambda: keyboard.candidate_count() > 0, timeout=3000)


def test_a_target_that_goes_away_hides_the_keyboard(qtbot: QtBot, page: Page) -> None:
    gone = QLineEdit(page)
    page.layout().insertWidget(0, gone)
    gone.show()
    page.keyboard.set_target(gone)
    assert page.keyboard.isVisible()
    with qtbot.waitSignal(gone.destroyed, timeout=1000):
        gone.deleteLater()
    assert page.keyboard.target() is None
    assert not page.keyboard.isVisible()


def test_words_are_translated_and_named(page: Page) -> None:
    keyboard = page.keyboard
    set_language("zh_CN")
    keyboard.retranslate()
    assert keyboard.accessibleName() == "拼音键盘"
    assert keyboard.spoken_text() == "请按拼音的字母，再在键盘上方选择要输入的字。"
    keyboard.set_language("en")
    set_language("en")
    keyboard.retranslate()
    assert keyboard.accessibleName() == "Keyboard"
    assert "letters" in keyboard.spoken_text()
    assert keyboard.view().accessibleName() == keyboard.accessibleName()
