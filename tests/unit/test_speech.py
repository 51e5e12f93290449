"""What the voice says: every Chinese text the terminal can speak, through the real espeak-ng.

espeak-ng -x prints the phonemes it would speak. A switch to another language shows as a marker
such as "(en)" (and the English phonemes after it). Mandarin shows as syllables: an onset and
rime, a tone number, and at most a nasal coda ("tS;h'i21N" is 请). The Mandarin check below
accepts only syllables the voice itself makes for Chinese characters: the inventory is measured
by reading every CJK Unified Ideograph with the same voice. espeak-ng 1.51's own letter names
("F" as 'ai35f, "X" as 'ai35ks) end in English consonants and fail it, and so does a letter the
pinyin voice reads as a pinyin initial ("F2" as "f").
"""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from kiosk.i18n import load_catalogue, set_language
from kiosk.speech import HIDDEN, REFUSED_VOICES, WANTED_VOICES, choose_voice, speakable

ROOT = Path(__file__).resolve().parents[2]
PO_DIR = ROOT / "assets" / "i18n" / "zh_CN"
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"

ZH_VOICE = WANTED_VOICES["zh_CN"][0].espeak
EN_VOICE = WANTED_VOICES["en"][0].espeak
ESPEAK = shutil.which("espeak-ng")
assert ESPEAK, "espeak-ng is installed by scripts/setup.sh (Debian package espeak-ng)"

# Values a placeholder takes on a real screen (receipt numbers as ReceiptNumbers hands them out).
FILL_ZH = {
    "limit": "30", "count": "3", "pending": "3", "rejected": "1", "attention": "2", "done": "3",
    "total": "12", "seconds": "30", "recovered": "2", "present": "1", "delivered": "4",
    "unreadable": "0", "status": "503", "when": "11-21 14:05", "terminal_id": "GZ01",
    "channel": "自助终端", "name": "张三", "label": "手机号码",
    "message": "请输入11位手机号码，以1开头。", "problem": "网络连接中断。",
    "reason": "数据库文件已损坏", "state": "未受理", "fields": "姓名、手机号码",
    "code": "transport_error", "file": "outbox-20261129-140502.corrupt", "number": "3",
    "receipt": "GZ-20261129-0001", "phone": "13800138000", "id_number": "110105********002X",
}  # fmt: skip
FILL_EN = {**FILL_ZH, "channel": "self-service terminal", "name": "Zhang San",
           "label": "Mobile phone", "message": "Please enter an 11-digit mobile number.",
           "problem": "The network is down.", "reason": "the database file is damaged",
           "state": "Not accepted", "fields": "name, phone"}  # fmt: skip
# Placeholders whose meaning depends on the message, not on their name.
SPECIAL = {"ID card: {number}": {"number": "110105********002X"}}

# What the screens show beside the catalogue and the translations: receipts, phones, IDs, dates.
SAMPLES_ZH = [
    "您的受理编号 GZ-20261129-0001，请妥善保管。",
    "受理编号：K01-20261123-0007",
    "手机号码：13800138000",
    "身份证：110105********002X",
    "身份证：11010519491231002X",
    "身份证：110101195203080021",
    "出示演示身份证（F2）",
    "上传队列（F9）",
    "请按F2键",
    "请上传 PDF 文件",
    "⚠ 请带好身份证 • 材料原件",
    "待上传：3 件 · 上次联网：2026-11-29 14:05",
    "正在上传：3 / 12",
    "办理进度 50%，预计 1~3 个工作日。",
    "工本费 12.5 元",
    "幸福路12号3栋502室",
    "姓名：张＊",
]


def espeak(text: str, voice: str) -> str:
    """The phonemes espeak-ng speaks for `text` with `voice` (the text goes in on stdin)."""
    done = subprocess.run(
        [str(ESPEAK), "-v", voice, "-q", "-x", "--stdin"],
        input=text, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


SWITCH = re.compile(r"\(([a-z]{2,3}(?:-[a-z0-9]+)*)\)", re.IGNORECASE)
PAUSES = re.compile(r"\s+|_[|!:_]*")


@cache
def mandarin_syllables() -> tuple[frozenset[str], frozenset[str]]:
    """(onset+rime spellings, codas) the Mandarin voice uses, read off every CJK ideograph."""
    chars = " ".join(chr(c) for c in range(0x4E00, 0xA000))
    heads: set[str] = set()
    codas: set[str] = set()
    for word in PAUSES.split(espeak(chars, ZH_VOICE)):
        match = re.fullmatch(r"(\D+)\d+(\D*)", word.replace("'", "").replace(",", ""))
        if match:
            heads.add(match[1])
            codas.add(match[2])
    assert len(heads) > 300 and codas == {"", "n", "N"}, (len(heads), codas)
    return frozenset(heads), frozenset(codas)


def not_mandarin(phonemes: str) -> list[str]:
    """The parts of espeak-ng's phoneme output that are not Mandarin syllables."""
    heads, codas = mandarin_syllables()
    problems = [f"switch to ({m[1]})" for m in SWITCH.finditer(phonemes) if m[1] != "cmn"]
    for word in PAUSES.split(SWITCH.sub(" ", phonemes)):
        if not word:
            continue
        pieces = re.split(r"\d+", word.replace("'", "").replace(",", ""))
        ok = len(pieces) >= 2 and pieces[0] in heads and pieces[-1] in codas
        ok = ok and all(
            any(piece[: len(c)] == c and piece[len(c) :] in heads for c in codas)
            for piece in pieces[1:-1]
        )
        if not ok:
            problems.append(word)
    return problems


def not_english(phonemes: str) -> list[str]:
    """Language switches, and espeak-ng's name for a character it cannot read in English."""
    problems = [f"switch to ({m[1]})" for m in SWITCH.finditer(phonemes)]
    if "tS'aIni:zl,Et3" in phonemes:
        problems.append("'Chinese letter'")
    return problems


def fill(template: str, values: dict[str, str], msgid: str) -> str:
    names = [field for _t, field, _s, _c in string.Formatter().parse(template) if field]
    own = SPECIAL.get(msgid, {})
    return template.format(**{n: own.get(n, values.get(n, "3")) for n in names})


def po_messages() -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) of every translated message, placeholders filled with screen values."""
    for path in sorted(PO_DIR.glob("*.po")):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale="zh_CN")
        for message in catalog:
            if message.id and isinstance(message.id, str) and message.string:
                zh = str(message.string)
                yield fill(message.id, FILL_EN, message.id), fill(zh, FILL_ZH, message.id)


def catalogue_texts(language: str) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == language and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(CATALOGUE.read_text(encoding="utf-8")))
    return found


# What speakable hands a Chinese voice: characters, digits and the pauses of Chinese punctuation.
# speech-dispatcher's own symbol rules would otherwise put words in ("-" becomes 减, "*" 星号).
PLAIN_ZH = re.compile(r"[\u3400-\u9fff0-9 ，。、；：？！]*")


def spoken_problems(texts: list[str], language: str, voice: str) -> dict[str, list[str]]:
    check = not_mandarin if language == "zh_CN" else not_english
    problems = {}
    for text in texts:
        said = speakable(text, language)
        found = check(espeak(said, voice))
        if language == "zh_CN" and not PLAIN_ZH.fullmatch(said):
            found.append("symbols left for the speech server to name")
        if found:
            problems[f"{text!r} spoken as {said!r}"] = found
    return problems


@pytest.fixture(autouse=True)
def _chinese_screen() -> Iterator[None]:
    set_language("zh_CN")
    yield
    set_language("en")


# --- the check itself can fail -----------------------------------------------------------------


def test_default_mandarin_voice_reads_chinese_as_english() -> None:
    """espeak-ng 1.51's "cmn" voice says 你好 as "ni three hao three": the check must see it."""
    assert not_mandarin(espeak("你好", "cmn"))
    assert not not_mandarin(espeak("你好", ZH_VOICE))
    assert "Chinese (Mandarin, latin as English)" in REFUSED_VOICES


@pytest.mark.parametrize(
    "raw",
    ["请按F2键", "身份证：11010519491231002X", "请上传 PDF 文件", "姓名：张***", "正在上传：3 / 12",
     "办理进度 50%"],
)  # fmt: skip
def test_screen_text_as_it_is_is_not_mandarin(raw: str) -> None:
    assert not_mandarin(espeak(raw, ZH_VOICE)), raw
    assert not not_mandarin(espeak(speakable(raw, "zh_CN"), ZH_VOICE)), speakable(raw, "zh_CN")


def test_english_check_sees_chinese_characters() -> None:
    assert not_english(espeak("Hello, 张三", EN_VOICE))
    assert not not_english(espeak(speakable("Hello, 张三", "en"), EN_VOICE))


# --- everything the terminal says --------------------------------------------------------------


def test_every_translated_message_is_spoken_in_mandarin() -> None:
    texts = [zh for _en, zh in po_messages()]
    assert len(texts) > 150
    assert spoken_problems(texts, "zh_CN", ZH_VOICE) == {}


def test_every_catalogue_text_is_spoken_in_mandarin() -> None:
    texts = catalogue_texts("zh_CN")
    assert len(texts) > 50
    assert spoken_problems(texts, "zh_CN", ZH_VOICE) == {}


def test_receipts_phones_ids_and_symbols_are_spoken_in_mandarin() -> None:
    assert spoken_problems(SAMPLES_ZH, "zh_CN", ZH_VOICE) == {}


def test_every_letter_and_digit_is_spoken_in_mandarin() -> None:
    texts = [f"代码 {c}" for c in string.ascii_uppercase + string.ascii_lowercase] + [
        f"编号 {c}{c}-{d}{d}" for c, d in zip("ABCXYZ", "019283", strict=True)
    ]
    assert spoken_problems(texts, "zh_CN", ZH_VOICE) == {}


def test_english_messages_and_catalogue_have_no_language_switch() -> None:
    texts = [en for en, _zh in po_messages()] + catalogue_texts("en")
    texts += ["Your receipt number is GZ-20261129-0001.", "ID card: 110105********002X"]
    assert spoken_problems(texts, "en", EN_VOICE) == {}


# --- the rules, without the voice --------------------------------------------------------------


def test_numbers_to_write_down_are_read_digit_by_digit() -> None:
    assert (
        speakable("受理编号 GZ-20261129-0001", "zh_CN")
        == "受理编号 吉兹杠二零二六一一二九杠零零零一"
    )
    assert speakable("13800138000", "zh_CN") == "一三八零零一三八零零零"
    assert speakable("Receipt K01-20261123-0007", "en") == "Receipt K 0 1, 2 0 2 6 1 1 2 3, 0 0 0 7"


def test_counts_and_amounts_stay_numbers() -> None:
    assert speakable("本页面将在 30 秒后返回首页。", "zh_CN") == "本页面将在 30 秒后返回首页。"
    assert speakable("第 3 项，共 12 项", "zh_CN") == "第 3 项，共 12 项"


def test_masked_part_is_named_and_key_hints_are_not_read() -> None:
    hidden = load_catalogue("zh_CN")[HIDDEN]
    assert speakable("身份证：110105********002X", "zh_CN") == (
        f"身份证：一一零一零五，{hidden}，零零二艾克斯"
    )
    assert speakable("出示演示身份证（F2）", "zh_CN") == "出示演示身份证"
    assert speakable("Upload queue (F9)", "en") == "Upload queue"
    assert speakable("⚠ 请带好身份证 • 材料原件", "zh_CN") == "请带好身份证，材料原件"


def test_dates_and_times_are_said_as_people_say_them() -> None:
    assert speakable("2026-11-23", "zh_CN") == "二零二六年11月23日"
    assert speakable("上次联网：11-21 14:05", "zh_CN") == "上次联网：11月21日 14点05分"
    assert speakable("2026-11-23", "en") == "23 November 2026"


def test_hidden_word_is_translated_whatever_the_screen_language() -> None:
    set_language("en")
    assert speakable("110105********002X", "zh_CN") == speakable_in_chinese("110105********002X")


def speakable_in_chinese(text: str) -> str:
    set_language("zh_CN")
    try:
        return speakable(text, "zh_CN")
    finally:
        set_language("en")


def test_voice_is_chosen_by_name_never_the_english_reading_mandarin_voice() -> None:
    offered = [
        ("Chinese (Mandarin, latin as English)", "C"),
        ("Chinese (Mandarin, latin as Pinyin)", "C"),
        ("English (Caribbean)", "en_US"),
        ("English (Great Britain)", "en_GB"),
    ]
    assert choose_voice("zh_CN", offered) == "Chinese (Mandarin, latin as Pinyin)"
    assert choose_voice("en", offered) == "English (Great Britain)"
    assert choose_voice("zh_CN", offered[:1] + offered[2:]) is None
    assert choose_voice("en", [("English (Caribbean)", "en_US")]) == "English (Caribbean)"
    assert choose_voice("zh_CN", [("Tingting", "zh_CN"), ("Sinji", "zh_HK")]) == "Tingting"
