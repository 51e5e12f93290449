"""What the terminal says aloud and with which voice, without Qt.

Screen text is written for eyes: key hints, masked digits, receipt numbers, bullets. `speakable`
turns it into words a voice of that language reads correctly (measured with espeak-ng, whose
Mandarin voices otherwise switch to English for any latin letter or symbol), and `choose_voice`
names the voice to ask the engine for: the engine's default for a locale is no guide (through
speech-dispatcher, Qt files both espeak-ng Mandarin voices under the "C" locale).

A `Speaker` is anything that can say a text in a language and stop. The Qt voice guide is one;
prompts that never change may later be recorded once and played from audio files by another
Speaker that falls back to a synthesised voice for everything else. Such a Speaker would key its
recordings on `speakable(text, language)`, so the words recorded are the words a voice would say.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from kiosk.i18n import N_, current_language, load_catalogue
from kiosk.i18n import _ as translate_current


class Speaker(Protocol):
    def say(self, text: str, language: str) -> None:
        """Speak `text` (screen text; the speaker makes it speakable) in `language`."""

    def stop(self) -> None:
        """Stop speaking at once."""


@dataclass(frozen=True)
class WantedVoice:
    """A voice as the speech engine lists it (`name`) and as espeak-ng knows it (`espeak`)."""

    name: str
    espeak: str


# In order of preference. The names are the ones speech-dispatcher's espeak-ng module reports and
# QTextToSpeech's "speechd" engine lists (espeak-ng 1.51, speech-dispatcher 0.11).
WANTED_VOICES: Mapping[str, tuple[WantedVoice, ...]] = MappingProxyType(
    {
        "zh_CN": (WantedVoice("Chinese (Mandarin, latin as Pinyin)", "cmn-latn-pinyin"),),
        "en": (
            WantedVoice("English (Great Britain)", "en-gb"),
            WantedVoice("English (America)", "en-us"),
        ),
    }
)

# espeak-ng 1.51's default Mandarin voice turns each character into pinyin and then reads the
# pinyin as English ("你好" comes out as "ni three hao three"). Silence is better than that.
REFUSED_VOICES: frozenset[str] = frozenset({"Chinese (Mandarin, latin as English)"})


def choose_voice(language: str, voices: Iterable[tuple[str, str]]) -> str | None:
    """The voice to use for `language`, from (name, locale name such as "en_GB") pairs.

    A wanted voice by name first; otherwise any voice whose locale is that language (an engine
    other than espeak-ng with its own Mandarin voice), never a refused one. None: stay silent.
    """
    offered = [(name, locale) for name, locale in voices if name not in REFUSED_VOICES]
    names = {name for name, _locale in offered}
    for wanted in WANTED_VOICES.get(language, ()):
        if wanted.name in names:
            return wanted.name
    prefix = language.split("_", maxsplit=1)[0]
    exact = [name for name, locale in offered if locale == language]
    similar = [name for name, locale in offered if locale.split("_")[0] == prefix]
    for candidates in (exact, [] if language == "zh_CN" else similar):
        if candidates:
            return sorted(candidates)[0]
    return None


# --- speakable text ---------------------------------------------------------------------------

HIDDEN = N_("hidden")

_ZH_DIGITS = "零一二三四五六七八九"
# How people in a service hall say latin letters, written so a Mandarin voice reads them: an
# espeak-ng Mandarin voice either spells a lone letter with English sounds or reads it as pinyin.
_ZH_LETTERS = {
    "A": "诶", "B": "比", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉", "H": "艾尺",
    "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩", "O": "欧", "P": "批",
    "Q": "丘", "R": "阿尔", "S": "艾斯", "T": "提", "U": "优", "V": "维", "W": "达布溜",
    "X": "艾克斯", "Y": "歪", "Z": "兹",
}  # fmt: skip
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

_MASK = "*●"
# Full-width letters, digits and the symbols the rules below look at, as their ASCII forms; the
# Chinese punctuation stays as it is (it is what the voice pauses on).
_FULL_WIDTH = {
    **{0xFF10 + i: 0x30 + i for i in range(10)},
    **{0xFF21 + i: 0x41 + i for i in range(26)},
    **{0xFF41 + i: 0x61 + i for i in range(26)},
    **{ord(a): ord(b) for a, b in zip("＊％～－／＋＃", "*%~-/+#", strict=True)},
}
# A key hint in brackets ("（F2）", "(Esc)"): the person at a touch screen has no keyboard.
_KEY_HINT = re.compile(
    r"\s*[（(\[]\s*(?:F\d{1,2}|Esc|Enter|Tab|(?:Ctrl|Alt|Shift)\+\w+)\s*[)）\]]", re.IGNORECASE
)
# An error code in brackets is for staff, who read it on the screen; spelt out letter by letter
# ("transport_error") it is a long string of noise to the citizen.
_ERROR_CODE = re.compile(r"\s*[（(]\s*(?:错误)?(?:代码|代号|Error code|Code)\s*[：:][^）)]*[）)]")
_DATE = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)日?")
# "11-21 14:05": a day this year, then the time (how the upload queue shows its last contact).
_MONTH_DAY = re.compile(r"(?<![\d-])(1[0-2]|0?[1-9])-([0-2]?\d|3[01])(?=\s+\d{1,2}:\d{2})")
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?!\d)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
_RANGE = re.compile(r"(?<=\d)\s*~\s*(?=\d)")
# A room number is said digit by digit (502室: 五零二室), as people in China say it.
_ROOM = re.compile(r"(?<!\d)(\d{3,4})(?=\s*(?:室|房))")
# Receipt numbers, ID numbers, phone numbers, key names: anything made of latin letters, digits,
# mask characters and inner dashes is read one character at a time, unless it is a plain number
# of up to six digits (an amount, a count, a year).
_CODE = re.compile(r"[0-9A-Za-z*●]+(?:-[0-9A-Za-z*●]+)*")
_PLAIN_NUMBER = re.compile(r"\d{1,6}")
_MASK_RUN = re.compile(r"[*●]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")

# Symbols that only separate or decorate; replaced by a pause so the voice neither names them
# (espeak-ng says "asterisk", "slash", "percent" in English) nor runs the words together.
_PAUSES_ZH = {
    "•": "，", "·": "，", "・": "，", "/": "，", "|": "，", "—": "，", "–": "，", "…": "，",
    ",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "，", ")": "，", "[": "，",
    "]": "，", "【": "，", "】": "，", "（": "，", "）": "，", "“": "", "”": "", "‘": "", "’": "",
    "\"": "", "'": "",
    "「": "", "」": "", "《": "", "》": "", "+": "加", "#": "号", "&": "和",
}  # fmt: skip
_ZH_KEEP = set("，。、；：？！")


def _word(message: str, language: str) -> str:
    """`message` in `language`, whatever the screen's language is at the moment."""
    if language == "en":
        return message
    if language == current_language():
        return translate_current(message)
    return _catalogue(language).get(message, message)


@functools.cache
def _catalogue(language: str) -> Mapping[str, str]:
    return MappingProxyType(load_catalogue(language))


def speakable(text: str, language: str) -> str:
    """The words a voice should say for `text` as shown on the screen in `language`."""
    text = text.translate(_FULL_WIDTH)
    text = _KEY_HINT.sub("", text)
    text = _ERROR_CODE.sub("", text)
    if language == "zh_CN":
        return _speakable_zh(text)
    return _speakable_en(text)


def _spell_zh(token: str, hidden: str) -> str:
    parts: list[str] = []
    for chunk in re.split(r"([*●]+|-)", token):
        if not chunk:
            continue
        if chunk[0] in _MASK:
            parts.append(f"，{hidden}，")
        elif chunk == "-":
            parts.append("杠")
        else:
            parts.append(
                "".join(
                    _ZH_DIGITS[int(c)] if c.isdigit() else _ZH_LETTERS[c.upper()] for c in chunk
                )
            )
    return "".join(parts)


def _speakable_zh(text: str) -> str:
    hidden = _word(HIDDEN, "zh_CN")
    text = _DATE.sub(
        lambda m: "".join(_ZH_DIGITS[int(c)] for c in m[1]) + f"年{int(m[2])}月{int(m[3])}日",
        text,
    )
    text = _MONTH_DAY.sub(lambda m: f"{int(m[1])}月{int(m[2])}日", text)
    text = _TIME.sub(lambda m: f"{int(m[1])}点" + (f"{m[2]}分" if m[2] != "00" else ""), text)
    text = _PERCENT.sub(r"百分之\1", text)
    text = _DECIMAL.sub("点", text)
    text = _RANGE.sub("到", text)
    text = _ROOM.sub(lambda m: "".join(_ZH_DIGITS[int(c)] for c in m[1]), text)

    def code(m: re.Match[str]) -> str:
        token = m[0]
        if _PLAIN_NUMBER.fullmatch(token):
            return token  # the voice reads numbers as numbers: 30 秒, 第 3 项
        if _MASK_RUN.fullmatch(token):
            return f"，{hidden}，" if len(token) > 1 else ""  # a lone "*" marks a required field
        return _spell_zh(token, hidden)

    text = _CODE.sub(code, text)
    out: list[str] = []
    for ch in text:
        if ch in _PAUSES_ZH:
            out.append(_PAUSES_ZH[ch])
        elif ch.isdigit() or _CJK.fullmatch(ch) or ch in _ZH_KEEP:
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif ch == ".":
            out.append("。")
        # anything else (warning signs, arrows, ticks, emoji) is a picture, not a word
    return _tidy("".join(out), "，")


def _spell_en(token: str, hidden: str) -> str:
    parts: list[str] = []
    for chunk in re.split(r"([*●]+|-)", token):
        if not chunk or chunk == "-":
            continue
        parts.append(hidden if chunk[0] in _MASK else " ".join(chunk.upper()))
    return ", ".join(parts)


def _speakable_en(text: str) -> str:
    hidden = _word(HIDDEN, "en")
    text = _DATE.sub(
        lambda m: (
            f"{int(m[3])} {_EN_MONTHS[int(m[2]) - 1]} {m[1]}" if 1 <= int(m[2]) <= 12 else m[0]
        ),
        text,
    )
    text = _MONTH_DAY.sub(lambda m: f"{int(m[2])} {_EN_MONTHS[int(m[1]) - 1]}", text)
    text = _RANGE.sub(" to ", text)

    def code(m: re.Match[str]) -> str:
        token = m[0]
        if _MASK_RUN.fullmatch(token):
            return f", {hidden}, " if len(token) > 1 else ""
        if token.isalpha() or _PLAIN_NUMBER.fullmatch(token):
            return token  # words and abbreviations the voice knows, numbers it reads as numbers
        return _spell_en(token, hidden)

    text = _CODE.sub(code, text)
    # An English voice calls every Chinese character "Chinese letter": leave Chinese out.
    text = _CJK.sub(" ", text)
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "•·・|/()[]":
            out.append(", ")
        elif category in ("So", "Sk", "Co", "Cn") or ch in '“”"':
            continue
        else:
            out.append(ch)
    return _tidy("".join(out), ",")


def _tidy(text: str, comma: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(rf"\s*{comma}\s*", comma if comma == "，" else ", ", text)
    text = re.sub(rf"(?:{comma}\s*)+", comma if comma == "，" else ", ", text)
    text = re.sub(rf"(?:{comma}\s*)+([。！？；：）.!?;:])", r"\1", text)
    text = re.sub(rf"([：:。！？；])\s*(?:{comma}\s*)+", r"\1", text)
    return text.strip().strip(comma).strip()
