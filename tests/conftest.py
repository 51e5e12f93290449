"""Suite-wide settings: Qt offscreen, a private data directory, the default language."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ui.input_environment import prepare_environment

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# A test never speaks through the sound card; the mock engine records what would be said.
os.environ.setdefault("HALL_TTS_ENGINE", "mock")
# Terminals built by tests keep their outbox key in a file, never in the keyring of the machine
# running the tests; tests of the keyring path hand a keyring backend in explicitly.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
# The terminal's input method (the pinyin keyboard), chosen as main.py chooses it, before pytest-qt
# makes the QApplication.
prepare_environment()

pytest_plugins = [
    "tests.fixtures.platform",
    "tests.fixtures.badpeer",
    "tests.fixtures.tmpfs",
    "tests.fixtures.gat467_sim",
    "tests.fixtures.outbox",
    "tests.fixtures.stalls",
]


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    from kiosk.i18n import DEFAULT_LANGUAGE, set_language

    set_language(DEFAULT_LANGUAGE)
    yield
    set_language(DEFAULT_LANGUAGE)
