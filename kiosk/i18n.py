"""The one translation layer: English message ids, translations in assets/i18n/<lang>/*.po.

The active language is process-wide state, as it is for the person at the terminal: switching it
changes every string shown afterwards. Strings built at import time are marked with N_ and
translated when shown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")  # en is the message id language, complete by construction
ASSETS_I18N = Path(__file__).resolve().parent.parent / "assets" / "i18n"


def load_catalogue(language: str, root: Path = ASSETS_I18N) -> dict[str, str]:
    """Every translated message of one language, merged from the area files in its folder."""
    messages: dict[str, str] = {}
    folder = root / language
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        for message in catalog:
            if message.id and isinstance(message.id, str) and message.string:
                if message.fuzzy:
                    continue
                messages[message.id] = str(message.string)
    return messages


class Translator:
    """The active language and its messages.

    Each language's catalogue is read from disk once, on first use or by preload(), and kept: the
    person switching language presses a button on the GUI thread, which must not wait on the disk.
    """

    def __init__(self, root: Path = ASSETS_I18N) -> None:
        self._root = root
        self._lock = threading.Lock()  # the active language and its messages change together
        self._load_lock = threading.Lock()  # a catalogue is read once even when threads race
        self._catalogues: dict[str, Mapping[str, str]] = {"en": MappingProxyType({})}
        self._language = "en"
        self._messages: Mapping[str, str] = self._catalogues["en"]

    @property
    def language(self) -> str:
        return self._language

    def preload(self, languages: Iterable[str] = LANGUAGES) -> None:
        """Read the catalogues now (from a worker thread at start-up), not at the first switch."""
        for language in languages:
            self._catalogue(language)

    def _catalogue(self, language: str) -> Mapping[str, str]:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        cached = self._catalogues.get(language)
        if cached is not None:
            return cached
        with self._load_lock:
            cached = self._catalogues.get(language)
            if cached is None:
                cached = MappingProxyType(load_catalogue(language, self._root))
                self._catalogues[language] = cached
            return cached

    def set_language(self, language: str) -> None:
        messages = self._catalogue(language)
        with self._lock:
            self._language = language
            self._messages = messages

    def gettext(self, message: str) -> str:
        translated = self._messages.get(message)
        if translated is None:
            if self._language != "en":
                log.warning("untranslated message in %s: %r", self._language, message)
            return message
        return translated


_translator = Translator()


def set_language(language: str) -> None:
    _translator.set_language(language)


def preload() -> None:
    """Read every language's catalogue now, so that switching language later reads no file.

    Safe to call from any thread: start-up work that runs once the first screen is up may call it.
    """
    _translator.preload()


def current_language() -> str:
    return _translator.language


def _(message: str) -> str:
    """Translate a message id into the active language."""
    return _translator.gettext(message)


def N_(message: str) -> str:
    """Mark a message for translation without translating it yet."""
    return message


def pick(texts: Mapping[str, str] | str, language: str | None = None) -> str:
    """Choose the active language's text from catalogue data such as {"zh_CN": ..., "en": ...}."""
    if isinstance(texts, str):
        return texts
    lang = language or current_language()
    for candidate in _fallbacks(lang):
        if texts.get(candidate):
            return texts[candidate]
    return next(iter(texts.values()), "")


def _fallbacks(language: str) -> Iterable[str]:
    yield language
    if language != DEFAULT_LANGUAGE:
        yield DEFAULT_LANGUAGE
    yield "en"
