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
    def __init__(self, root: Path = ASSETS_I18N) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._language = "en"
        self._messages: dict[str, str] = {}

    @property
    def language(self) -> str:
        return self._language

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        messages = {} if language == "en" else load_catalogue(language, self._root)
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
