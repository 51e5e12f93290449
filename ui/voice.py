"""Voice guidance: reads each page's question aloud. Silent, never broken, when no engine works."""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QLocale, QObject
from PySide6.QtTextToSpeech import QTextToSpeech

log = logging.getLogger(__name__)


class VoiceGuide(QObject):
    def __init__(
        self, enabled: bool = True, engine: str | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._enabled = enabled
        self._speech: QTextToSpeech | None = None
        self.spoken: list[str] = []  # what was said, for the screen reader log and tests
        if not enabled:
            return
        name = engine or os.environ.get("HALL_TTS_ENGINE") or ""
        try:
            available = QTextToSpeech.availableEngines()
            if name and name not in available:
                log.warning("speech engine %s is not available (have %s)", name, available)
                name = ""
            self._speech = QTextToSpeech(name, self) if name else QTextToSpeech(self)
            if self._speech.state() == QTextToSpeech.State.Error:
                log.warning("speech engine failed: %s", self._speech.errorString())
                self._speech = None
        except RuntimeError:
            log.exception("no speech engine")
            self._speech = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if not enabled:
            self.stop()

    def set_language(self, language: str) -> None:
        if self._speech is not None:
            self._speech.setLocale(QLocale(language))

    def say(self, text: str) -> None:
        if not self._enabled or not text:
            return
        self.spoken.append(text)
        if self._speech is not None:
            self._speech.stop()
            self._speech.say(text)

    def stop(self) -> None:
        if self._speech is not None:
            self._speech.stop()
