"""Every user-facing string goes through the translation layer and has a Chinese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from kiosk.i18n import ASSETS_I18N, _, load_catalogue, set_language

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("kiosk", "ui")


def _message_ids() -> dict[str, str]:
    found: dict[str, str] = {}
    method_map = [("**.py", "python")]
    for folder in SOURCES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=method_map, keywords={"_": None, "N_": None}
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, f"{folder}/{filename}:{lineno}")
    return found


def test_every_message_has_a_chinese_translation() -> None:
    zh = load_catalogue("zh_CN")
    missing = {m: where for m, where in _message_ids().items() if m not in zh}
    assert not missing, f"untranslated: {missing}"


def test_no_translation_is_left_over_from_removed_messages() -> None:
    used = set(_message_ids())
    stale = set(load_catalogue("zh_CN")) - used
    assert not stale, f"translations nobody uses: {sorted(stale)}"


def test_placeholders_survive_translation() -> None:
    zh = load_catalogue("zh_CN")
    for message, translated in zh.items():
        tokens = (
            "{name}",
            "{count}",
            "{limit}",
            "{seconds}",
            "{number}",
            "{total}",
            "{reason}",
            "{label}",
            "{message}",
        )
        for token in tokens:
            assert (token in message) == (token in translated), (message, translated)


def test_switching_language_switches_every_string() -> None:
    message = "Please place your ID card on the reader"
    set_language("en")
    assert _(message) == message
    set_language("zh_CN")
    assert _(message) == "请将身份证放在读卡区"


def test_po_files_are_where_the_loader_reads_them() -> None:
    assert sorted(p.name for p in (ASSETS_I18N / "zh_CN").glob("*.po"))
