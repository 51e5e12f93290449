"""The input method the terminal types Chinese through, chosen before Qt starts.

Qt reads the input method from the environment when the QApplication is made, so
`prepare_environment()` runs before that (ui/start.py, the test conftest, the scripts that draw
pages). It imports nothing of Qt: the first screen is not held up by the keyboard's modules.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

STYLE_NAME = "hallkiosk"  # ui/qml/QtQuick/VirtualKeyboard/Styles/hallkiosk/style.qml
# Qt Virtual Keyboard's own QML overrides a member of its base type and Qt says so, from the QML
# loader thread, on every start; the message is about Qt, not about this terminal (and a message
# from that thread is dangerous: ui/pinyin_keyboard.py, _load_multimedia_here).
QUIET_CATEGORIES = ("qt.qml.propertyCache.append=false",)


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Choose the virtual keyboard as Qt's input method. Call before the QApplication exists.

    - QT_IM_MODULE=qtvirtualkeyboard: the input context the keyboard types through.
    - QT_VIRTUALKEYBOARD_DESKTOP_DISABLE=1: no top-level keyboard window of Qt's own; the panel
      is the one this module puts in the window.
    - QT_VIRTUALKEYBOARD_STYLE: the terminal's large-key style (found through the import path
      the widget adds to its QML engine).
    - QT_QUICK_BACKEND=software: the panel is drawn by the CPU, the same on a terminal without
      a GPU, under Xvfb and on the offscreen platform of the tests (where QQuickWidget falls back
      to it anyway); a deployment with a GPU may set another backend.
    Values already set by whoever starts the program are kept.
    """
    env = os.environ if environ is None else environ
    env.setdefault("QT_IM_MODULE", "qtvirtualkeyboard")
    env.setdefault("QT_VIRTUALKEYBOARD_DESKTOP_DISABLE", "1")
    env.setdefault("QT_VIRTUALKEYBOARD_STYLE", STYLE_NAME)
    env.setdefault("QT_QUICK_BACKEND", "software")
    rules = [r for r in env.get("QT_LOGGING_RULES", "").split(";") if r]
    for rule in QUIET_CATEGORIES:
        if rule not in rules:
            rules.append(rule)
    env["QT_LOGGING_RULES"] = ";".join(rules)
