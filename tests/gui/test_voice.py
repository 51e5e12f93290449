"""The voice guide through the real speech stack: QTextToSpeech's speechd engine, a private
speech-dispatcher with its espeak-ng module, audio to libao's null driver (no sound card here).

What the module was told is read from the logs of that private speech-dispatcher: the voice it
set and the words it spoke, which then go through espeak-ng to check they are Mandarin.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QLocale, QObject
from PySide6.QtTextToSpeech import QTextToSpeech
from pytestqt.qtbot import QtBot

from kiosk.speech import WANTED_VOICES, speakable
from tests.unit.test_speech import ZH_VOICE, espeak, not_mandarin
from ui.voice import VoiceGuide

PINYIN = WANTED_VOICES["zh_CN"][0].name
ENGLISH = WANTED_VOICES["en"][0].name
ENGINE_UP = 60_000  # ms: listing espeak-ng's 13,000 voices takes seconds on a busy machine


@dataclass(frozen=True)
class Dispatcher:
    address: str
    server_log: Path
    module_log: Path

    def told(self) -> str:
        return self.server_log.read_text(encoding="utf-8", errors="replace")

    def voice_for(self, words: str) -> str:
        """The voice the espeak-ng module last set before speaking `words` (NFKC forms)."""
        for block in self.module().split("module_speak().")[1:]:
            request = re.search(r"Requested data: \|<speak>(.*?)</speak>\|", block, re.S)
            if request and unicodedata.normalize("NFKC", request[1]) == words:
                voices = re.findall(r"Successfully set (?:synthesis )?voice to \"?(.*?)\"?\.?$",
                                    block, re.M)  # fmt: skip
                return voices[-1] if voices else ""
        return ""

    def module(self) -> str:
        if not self.module_log.exists():
            return ""
        return self.module_log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def dispatcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dispatcher]:
    server = shutil.which("speech-dispatcher")
    module = Path("/usr/lib/speech-dispatcher-modules/sd_espeak-ng")
    assert server and module.exists(), "scripts/setup.sh installs speech-dispatcher-espeak-ng"
    conf = tmp_path / "conf"
    (conf / "modules").mkdir(parents=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    # libao's null driver takes the audio and drops it: speech runs at its real pace, unheard.
    (home / ".libao").write_text("default_driver=null\n", encoding="utf-8")
    (conf / "speechd.conf").write_text(
        "LogLevel 5\n"
        f'LogDir "{logs}"\n'
        'AudioOutputMethod "libao"\n'
        'AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\n'
        "DefaultModule espeak-ng\n",
        encoding="utf-8",
    )
    (conf / "modules" / "espeak-ng.conf").write_text(
        "Debug 1\nEspeakNormalRate 170\nEspeakIndexing 1\n", encoding="utf-8"
    )
    socket = tmp_path / "speechd.sock"
    proc = subprocess.Popen(
        [server, "--run-single", "--timeout", "0", "--communication-method", "unix_socket",
         "--socket-path", str(socket), "--config-dir", str(conf), "--pid-file",
         str(tmp_path / "speechd.pid")],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):  # until the socket is there or the server has given up
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if socket.exists():
                    break
            else:
                pytest.fail(f"speech-dispatcher exited with {proc.returncode}")
        assert socket.exists(), "speech-dispatcher did not open its socket"
        address = f"unix_socket:{socket}"
        monkeypatch.setenv("SPEECHD_ADDRESS", address)
        yield Dispatcher(address, logs / "speech-dispatcher.log", logs / "espeak-ng.log")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def sent_to_module(log: str) -> list[str]:
    """What speech-dispatcher handed the espeak-ng module, with full-width punctuation as
    ASCII (speech-dispatcher's own symbol rules turn "，" into "," on the way)."""
    found = re.findall(r"Command sent to output module: \|<speak>(.*?)</speak>\|", log, re.S)
    return [unicodedata.normalize("NFKC", text) for text in found]


def test_chinese_is_spoken_with_the_pinyin_voice_and_english_with_an_english_one(
    qtbot: QtBot, dispatcher: Dispatcher
) -> None:
    guide = VoiceGuide(engine="speechd")
    try:
        guide.set_language("zh_CN")
        qtbot.waitUntil(lambda: guide.voice_name != "", timeout=ENGINE_UP)
        assert guide.voice_name == PINYIN

        screen = "出示演示身份证（F2）。受理编号 GZ-20261129-0001，身份证：110105********002X"
        guide.say(screen)
        assert guide.spoken == [screen]
        words = unicodedata.normalize("NFKC", speakable(screen, "zh_CN"))
        qtbot.waitUntil(lambda: words in sent_to_module(dispatcher.told()), timeout=20_000)
        qtbot.waitUntil(
            lambda: "Leaving module_speak() normally" in dispatcher.module(), timeout=20_000
        )
        assert dispatcher.voice_for(words) == PINYIN
        # What the module received is what espeak-ng spoke: only Mandarin syllables.
        for said in sent_to_module(dispatcher.told()):
            assert not not_mandarin(espeak(said, ZH_VOICE)), said

        with qtbot.waitSignal(guide.voice_changed, timeout=5_000) as changed:
            guide.set_language("en")
        assert changed.args == [ENGLISH] and guide.voice_name == ENGLISH
        english = "Please place your ID card on the reader"
        guide.say(english)
        qtbot.waitUntil(lambda: dispatcher.voice_for(english) != "", timeout=20_000)
        assert dispatcher.voice_for(english) == ENGLISH
    finally:
        guide.stop()
        shiboken6.delete(guide)


def test_choosing_by_locale_alone_gives_no_mandarin_voice(
    qtbot: QtBot, dispatcher: Dispatcher
) -> None:
    """Why the voice is chosen by name: Qt files speechd's Mandarin voices under no language."""
    owner = QObject()
    speech = QTextToSpeech("speechd", owner)
    try:
        assert speech.state() != QTextToSpeech.State.Error, speech.errorString()
        speech.setLocale(QLocale("zh_CN"))
        assert "Mandarin" not in speech.voice().name()
        chinese = [
            loc for loc in speech.availableLocales() if loc.language() == QLocale.Language.Chinese
        ]
        named = [
            voice.locale().name()
            for loc in speech.availableLocales()
            for voice in speech.allVoices(loc)
            if voice.name() == PINYIN
        ]
        assert chinese == [] and named == ["C"]
    finally:
        shiboken6.delete(owner)


# --- the mock engine: the API the shell and the journeys use ---------------------------------


def test_mock_engine_keeps_the_api_and_records_the_screen_text(qtbot: QtBot) -> None:
    guide = VoiceGuide(engine="mock")
    try:
        assert guide.enabled and guide.engine_ready
        guide.set_language("en")
        assert guide.voice_name in {"Anne", "Bob", "Charly", "Mary"}
        guide.say("Your receipt number is GZ-20261129-0001")
        guide.set_language("zh_CN")
        assert guide.voice_name == ""  # the mock engine has no Chinese voice: silent, not wrong
        guide.say("请按F2键")
        assert guide.spoken == ["Your receipt number is GZ-20261129-0001", "请按F2键"]
        guide.set_enabled(False)
        assert state(guide) == (False, "")
        guide.say("not said")
        guide.stop()
        assert guide.spoken[-1] == "请按F2键"
        guide.set_enabled(True)
        guide.say("")
        assert len(guide.spoken) == 2
    finally:
        shiboken6.delete(guide)


def state(guide: VoiceGuide) -> tuple[bool, str]:
    return guide.enabled, guide.voice_name


@dataclass
class Recorder:
    said: list[tuple[str, str]]
    stopped: int = 0

    def say(self, text: str, language: str) -> None:
        self.said.append((text, language))

    def stop(self) -> None:
        self.stopped += 1


def test_another_speaker_plugs_in(qtbot: QtBot) -> None:
    recorder = Recorder([])
    guide = VoiceGuide(speaker=recorder)
    try:
        guide.set_language("zh_CN")
        guide.say("请将身份证放在读卡区")
        guide.set_language("en")
        guide.say("Welcome")
        guide.stop()
        assert recorder.said == [("请将身份证放在读卡区", "zh_CN"), ("Welcome", "en")]
        assert recorder.stopped == 1 and guide.voice_name == ""
    finally:
        shiboken6.delete(guide)


def test_a_guide_started_silent_speaks_once_switched_on(qtbot: QtBot) -> None:
    guide = VoiceGuide(enabled=False, engine="mock")
    try:
        guide.set_language("en")
        assert state(guide) == (False, "") and not guide.engine_ready
        guide.set_enabled(True)
        assert (guide.engine_ready, bool(state(guide)[1])) == (True, True)
    finally:
        shiboken6.delete(guide)


def test_a_speech_engine_that_hangs_cannot_keep_the_terminal_from_stopping() -> None:
    """The engine's thread is stopped when its owner goes; one stuck in the speech library is
    left behind after a bounded wait instead of holding the GUI thread for ever."""
    import threading
    import time

    from PySide6.QtCore import QObject

    from ui import voice

    release = threading.Event()
    entered = threading.Event()

    class Stuck(QObject):
        def block(self) -> None:
            entered.set()
            release.wait(30)  # the engine, stuck inside the library

    owner = QObject()
    thread = voice._SpeechThread(owner)
    worker = Stuck()
    worker.moveToThread(thread)
    thread.started.connect(worker.block)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    thread.finish()
    waited = time.monotonic() - started
    assert voice.FINISH_WAIT_MS / 1000 - 0.1 <= waited < voice.FINISH_WAIT_MS / 1000 + 2
    assert thread in voice._STUCK and thread.parent() is None
    release.set()  # the library lets go: the thread ends by itself
    assert thread.wait(10_000)
    voice._STUCK.remove(thread)
