"""Switching language reads no file: each catalogue is read once and kept for the process."""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kiosk import i18n
from kiosk.i18n import ASSETS_I18N, LANGUAGES, Translator, load_catalogue

MESSAGE = "Please place your ID card on the reader"


def _po_files(language: str) -> list[Path]:
    return sorted((ASSETS_I18N / language).glob("*.po"))


@contextmanager
def _no_file_opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way Python code opens a file records its name instead of opening it."""
    opened: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def opener(*args: Any, **kwargs: Any) -> Any:
            opened.append(f"{name}: {args[0] if args else kwargs}")
            raise AssertionError(f"a file was opened while switching language: {args[:1]}")

        return opener

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", refuse("open"))
        patch.setattr(io, "open", refuse("io.open"))
        patch.setattr(os, "open", refuse("os.open"))
        patch.setattr(pathlib.Path, "open", refuse("Path.open"))
        yield opened


@pytest.fixture
def read_po_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the .po files kiosk.i18n parses from now on."""
    calls: list[str] = []
    real_read_po = i18n.read_po

    def counting_read_po(fileobj: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(Path(fileobj.name).name)
        return real_read_po(fileobj, *args, **kwargs)

    monkeypatch.setattr(i18n, "read_po", counting_read_po)
    return calls


def test_after_preload_switching_language_opens_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load_catalogue("zh_CN")[MESSAGE]
    assert expected != MESSAGE
    i18n.preload()
    seen: list[str] = []
    with _no_file_opened(monkeypatch) as opened:
        for _round in range(200):
            for language in LANGUAGES:
                i18n.set_language(language)
                seen.append(i18n._(MESSAGE))
    assert opened == []
    # The strings still follow the language: zh_CN, then English, two hundred times over.
    assert seen == [expected, MESSAGE] * 200


def test_each_catalogue_is_parsed_once_however_often_the_language_changes(
    read_po_calls: list[str],
) -> None:
    translator = Translator(ASSETS_I18N)
    for _round in range(50):
        translator.set_language("zh_CN")
        translator.set_language("en")
    assert sorted(read_po_calls) == [p.name for p in _po_files("zh_CN")]
    translator.set_language("zh_CN")
    assert translator.gettext(MESSAGE) == load_catalogue("zh_CN")[MESSAGE]


def test_preload_reads_before_the_first_switch(
    read_po_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    translator = Translator(ASSETS_I18N)
    assert read_po_calls == []
    translator.preload()
    assert sorted(read_po_calls) == [p.name for p in _po_files("zh_CN")]
    with _no_file_opened(monkeypatch) as opened:
        translator.set_language("zh_CN")
        translated = translator.gettext(MESSAGE)
    assert opened == []
    assert translated != MESSAGE


def test_racing_preloads_and_switches_parse_each_file_once(read_po_calls: list[str]) -> None:
    translator = Translator(ASSETS_I18N)
    workers = 8
    start = threading.Barrier(workers)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait(timeout=10)
            if index % 2:
                translator.preload()
            else:
                translator.set_language("zh_CN")
        except BaseException as exc:  # reported by the assertion below, not lost on a thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert sorted(read_po_calls) == [p.name for p in _po_files("zh_CN")]
    translator.set_language("zh_CN")
    assert translator.gettext(MESSAGE) == load_catalogue("zh_CN")[MESSAGE]


def test_a_language_that_is_not_offered_is_refused(read_po_calls: list[str]) -> None:
    translator = Translator(ASSETS_I18N)
    with pytest.raises(ValueError, match="unsupported language"):
        translator.set_language("fr")
    with pytest.raises(ValueError, match="unsupported language"):
        translator.preload(["fr"])
    assert translator.language == "en"
    assert read_po_calls == []
