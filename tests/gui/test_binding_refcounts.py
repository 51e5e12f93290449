"""The Qt binding keeps Python's reference counts: a terminal runs for weeks.

PySide6 6.12.0 on Python 3.11 returned None (and True/False) from C++ calls without taking a
reference: every call lowered None's count by one, and after enough calls the interpreter aborted
in "none_dealloc" ("Garbage-collecting", at exit or in a collection). On Python 3.12 and later
these objects are immortal and their counts do not move, so the check holds there trivially.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QWidget
from pytestqt.qtbot import QtBot

CALLS = 200


def _drift(call: object, target: object) -> int:
    before = sys.getrefcount(target)
    for _ in range(CALLS):
        call()  # type: ignore[operator]
    return sys.getrefcount(target) - before


def test_calls_returning_nothing_keep_none_alive(qtbot: QtBot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    text = QLabel("a", page)
    line = QLineEdit(page)
    press = QPushButton("b", page)
    page.show()
    calls = {
        "QWidget.update": page.update,
        "QLabel.clear": text.clear,
        "QLineEdit.insert": _Insert(line),
        "QPushButton.click": press.click,
        "QWidget.show": page.show,
        "QCoreApplication.sendPostedEvents": QCoreApplication.sendPostedEvents,
        "QTimer.singleShot": _Single(page),
    }
    drift = {name: _drift(call, None) for name, call in calls.items()}
    # Python code run meanwhile may hold a few more references for a moment; a lost reference
    # per call shows as about -CALLS.
    assert all(value > -CALLS // 2 for value in drift.values()), drift


def test_calls_returning_a_bool_keep_true_and_false_alive(qtbot: QtBot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    line = QLineEdit(page)
    for target in (True, False):
        drift = {
            "isVisible": _drift(page.isVisible, target),
            "hasFocus": _drift(line.hasFocus, target),
            "isReadOnly": _drift(line.isReadOnly, target),
            "isModified": _drift(line.isModified, target),
        }
        assert all(value > -CALLS // 2 for value in drift.values()), (target, drift)


class _Insert:
    def __init__(self, line: QLineEdit) -> None:
        self.line = line

    def __call__(self) -> None:
        self.line.insert("x")


class _Single:
    def __init__(self, widget: QWidget) -> None:
        self.widget = widget

    def __call__(self) -> None:
        QTimer.singleShot(0, self.widget.update)
