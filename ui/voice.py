"""Voice guidance: reads each page aloud with a voice chosen by name. Silent, never broken, when
no engine or no right voice is there.

The engine lives on its own thread: speech-dispatcher's espeak-ng module lists some 13,000 voices
(every voice with every variant), which takes seconds the person at the screen must not wait.
No Python runs on that thread; the engine's own slots are driven through queued signals.

Which voice: the engine's choice for a locale is no guide (through speech-dispatcher, Qt files
both espeak-ng Mandarin voices under the "C" locale, and zh_CN falls to an Indic voice), so the
voice is looked up by name (kiosk.speech.WANTED_VOICES). Without the Mandarin voice that reads
pinyin, Chinese stays silent: the other espeak-ng Mandarin voice reads every character as
English-sounding pinyin ("ni three hao three"), which confuses more than it helps, and the screen
shows everything that would be said.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QLocale, QObject, QThread, Signal
from PySide6.QtTextToSpeech import QTextToSpeech, QVoice

from kiosk.i18n import current_language
from kiosk.speech import Speaker, choose_voice, speakable

log = logging.getLogger(__name__)

PREFERRED_ENGINES = ("speechd",)  # speech-dispatcher: the espeak-ng voices by name
# Records, never speaks: only when asked for (the tests). Built in an instant, it also serves as
# the placeholder engine of the text to speech object that is moved to the speech thread and
# given its real engine there (so that the real engine lives on that thread).
MOCK_ENGINE = "mock"


FINISH_WAIT_MS = 2000
# Speech threads that did not stop in time (an engine stuck starting, a broken audio device):
# kept here, without a Qt parent, so that Qt never destroys a running thread; the process can
# still exit.
_STUCK: list[QThread] = []


class _SpeechThread(QThread):
    def finish(self) -> None:
        """Stop the engine's thread before Qt deletes it with its owner; wait a little only, so
        that a speech engine that hangs cannot keep the terminal from stopping."""
        self.quit()
        if self.wait(FINISH_WAIT_MS):
            return
        log.error("the speech engine did not stop within %d ms; left behind", FINISH_WAIT_MS)
        # Out of its owner (deleted next, with its children: a running QThread must not be) and
        # into _STUCK, which holds it for the life of the process: Python never frees it, on
        # this thread or another, and no deleteLater can run for a thread that will not stop.
        self.setParent(None)
        _STUCK.append(self)


def _pick_engine(requested: str) -> str:
    available = QTextToSpeech.availableEngines()
    if requested and requested not in available:
        log.warning("speech engine %s is not available (have %s)", requested, available)
        requested = ""
    if requested:
        return requested
    for name in PREFERRED_ENGINES:
        if name in available:
            return name
    real = [name for name in available if name != MOCK_ENGINE]
    return real[0] if real else ""


def _voice_language(language: str) -> QLocale.Language:
    return QLocale(language).language()


class QtSpeaker(QObject):
    """A Speaker on a QTextToSpeech engine, with the voice for each language chosen by name."""

    voice_changed = Signal(str)  # the voice now in use, "" for silence
    _engine_wanted = Signal(str)
    _voice_wanted = Signal(QVoice)
    _text = Signal(str)
    _silence = Signal()

    def __init__(self, engine: str, language: str, parent: QObject) -> None:
        super().__init__(parent)
        self._language = language
        self._voice_name = ""
        self._voices: dict[str, QVoice] = {}
        self._ready = False
        self._pending = ""  # said before the engine was up: spoken once it is (the latest only)
        self._missing_logged: set[str] = set()
        self._engine = engine
        threaded = engine != MOCK_ENGINE and MOCK_ENGINE in QTextToSpeech.availableEngines()
        if threaded:
            self._thread = _SpeechThread(self)
            self.destroyed.connect(self._thread.finish)
            # No Qt parent: an object with one cannot move to another thread. The thread owns
            # it and deletes it there when it finishes.
            self._speech = QTextToSpeech(MOCK_ENGINE)
            self._speech.moveToThread(self._thread)
            self._thread.finished.connect(self._speech.deleteLater)
        else:
            self._speech = QTextToSpeech(engine, self)
        self._engine_wanted.connect(self._speech.setEngine)
        self._voice_wanted.connect(self._speech.setVoice)
        self._text.connect(self._speech.say)
        self._silence.connect(self._speech.stop)
        self._speech.engineChanged.connect(self._engine_ready)
        if threaded:
            self._thread.start()
            self._engine_wanted.emit(engine)
        else:
            self._engine_ready(engine)

    @property
    def voice_name(self) -> str:
        return self._voice_name

    @property
    def ready(self) -> bool:
        return self._ready

    def _engine_ready(self, engine: str) -> None:
        if engine != self._engine:
            return
        if self._speech.state() == QTextToSpeech.State.Error:
            log.warning("speech engine %s failed: %s", engine, self._speech.errorString())
            return
        self._ready = True
        self.use_language(self._language)
        if self._pending:
            self.say(self._pending, self._language)

    def use_language(self, language: str) -> None:
        self._language = language
        if not self._ready:
            return
        wanted = {QLocale.Language.C, QLocale.Language.AnyLanguage, _voice_language(language)}
        self._voices = {
            voice.name(): voice
            for locale in self._speech.availableLocales()
            if locale.language() in wanted
            for voice in self._speech.allVoices(locale)
        }
        offered = [(name, voice.locale().name()) for name, voice in self._voices.items()]
        name = choose_voice(language, offered) or ""
        if not name and language not in self._missing_logged:
            self._missing_logged.add(language)
            log.log(
                logging.INFO if self._engine == MOCK_ENGINE else logging.ERROR,
                "no voice for %s in speech engine %s: staying silent in that language "
                "(for Chinese install the espeak-ng voice cmn-latn-pinyin with speech-dispatcher)",
                language,
                self._engine,
            )
        if name and name != self._voice_name:
            log.info("speaking %s with the voice %r (%s)", language, name, self._engine)
            self._voice_wanted.emit(self._voices[name])
        if name != self._voice_name:
            self._voice_name = name
            self.voice_changed.emit(name)

    def say(self, text: str, language: str) -> None:
        if language != self._language:
            self.use_language(language)
        if not self._ready:
            self._pending = text
            return
        self._pending = ""
        words = speakable(text, language)
        if self._voice_name and words:
            self._silence.emit()
            self._text.emit(words)

    def stop(self) -> None:
        self._pending = ""
        if self._ready:
            self._silence.emit()


class VoiceGuide(QObject):
    """Says what each page asks. `spoken` keeps the screen texts said (wiped with the visit)."""

    voice_changed = Signal(str)

    def __init__(
        self,
        enabled: bool = True,
        engine: str | None = None,
        parent: QObject | None = None,
        *,
        speaker: Speaker | None = None,
    ) -> None:
        super().__init__(parent)
        self._enabled = enabled
        self._engine = engine or os.environ.get("HALL_TTS_ENGINE") or ""
        self._language = current_language()
        self._speaker: Speaker | None = speaker
        self._qt: QtSpeaker | None = None
        self.spoken: list[str] = []  # what was said, for the screen reader log and tests
        if enabled:
            self._start()

    def _start(self) -> None:
        if self._speaker is not None:
            return
        name = _pick_engine(self._engine)
        if not name:
            log.warning("no speech engine: the voice guide stays silent")
            return
        self._qt = QtSpeaker(name, self._language, self)
        self._qt.voice_changed.connect(self.voice_changed)
        self._speaker = self._qt

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def voice_name(self) -> str:
        """The voice in use for the current language ("" when silent or not yet known)."""
        return self._qt.voice_name if self._qt is not None else ""

    @property
    def engine_ready(self) -> bool:
        return self._qt is not None and self._qt.ready

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if not enabled:
            self.stop()
        elif self._speaker is None:
            self._start()

    def set_language(self, language: str) -> None:
        self._language = language
        if self._qt is not None:
            self._qt.use_language(language)

    def say(self, text: str) -> None:
        if not self._enabled or not text:
            return
        self.spoken.append(text)
        if self._speaker is not None:
            self._speaker.say(text, self._language)

    def stop(self) -> None:
        if self._speaker is not None:
            self._speaker.stop()
