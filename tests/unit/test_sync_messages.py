"""Every text of the sync area has its zh_CN translation, and codes become sentences."""

from __future__ import annotations

import ast
from pathlib import Path

from kiosk.i18n import ASSETS_I18N, load_catalogue, set_language
from kiosk.platform_client import FieldError, OutcomeKind, SubmitOutcome
from kiosk.sync import decode_error, encode_error
from kiosk.sync_messages import describe_error, describe_outcome, describe_row, describe_state
from offline_queue.outbox import State

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("kiosk/sync_messages.py", "kiosk/platform_client.py", "kiosk/sync.py")


def _message_ids() -> set[str]:
    found = set()
    for rel in SOURCES:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def test_every_message_has_a_zh_cn_translation() -> None:
    ids = _message_ids()
    assert len(ids) > 20
    zh = load_catalogue("zh_CN", ASSETS_I18N)
    missing = sorted(i for i in ids if i not in zh)
    assert not missing
    for message_id in ids:  # placeholders survive translation
        for name in ("{fields}", "{status}", "{code}"):
            assert (name in message_id) == (name in zh[message_id]), message_id


def test_error_codes_become_sentences() -> None:
    set_language("zh_CN")
    assert describe_state(State.QUEUED) == "等待上传"
    assert describe_error("connection_failed") == "无法通过网络连接服务平台。"
    assert describe_error("http_502") == "服务平台出现故障（HTTP 502）。"
    assert describe_error("http_418") == "服务平台拒绝了该申报（HTTP 418）。"
    assert describe_error("something_new") == "错误代码：something_new"
    assert describe_error(None) == ""
    set_language("en")
    outcome = SubmitOutcome(
        OutcomeKind.REJECTED,
        error_code="validation_failed",
        fields=(FieldError("phone", "pattern"), FieldError("", "required")),
    )
    assert describe_outcome(outcome) == (
        "The platform found problems in the form: phone: not in the expected format; missing"
    )
    retry = SubmitOutcome(OutcomeKind.RETRY, error_code="timeout", offline=True)
    assert describe_outcome(retry) == (
        "The platform did not answer in time. It will be tried again automatically."
    )
    assert describe_outcome(SubmitOutcome(OutcomeKind.DELIVERED)) == "Delivered to the platform."


def test_error_text_round_trip() -> None:
    text = encode_error("validation_failed", (("phone", "pattern"), ("", "required")))
    assert text == "validation_failed|phone:pattern,:required"
    assert decode_error(text) == ("validation_failed", (("phone", "pattern"), ("", "required")))
    assert decode_error("timeout") == ("timeout", ())


REFUSED = "validation_failed|phone:pattern,name:required,address:maxLength,birth_date:format"
LABELS_ZH = {"phone": "联系电话", "name": "姓名", "address": "居住地址", "birth_date": "出生日期"}


def test_refused_fields_are_named_by_their_label_and_a_phrase() -> None:
    set_language("zh_CN")
    assert describe_error(REFUSED, LABELS_ZH) == (
        "服务平台发现表单有误：联系电话：格式不对；姓名：未填写；居住地址：太长；出生日期：无效"
    )
    # a callable works the same, and a field it does not know keeps the platform's name
    extra = "validation_failed|phone:pattern,extra:additionalProperties"
    text = describe_error(extra, LABELS_ZH.get)
    assert text == "服务平台发现表单有误：联系电话：格式不对；extra：不属于本表单"
    # a keyword this terminal does not know gets a phrase, never the raw keyword
    odd = describe_error("validation_failed|phone:dependentSchemas", LABELS_ZH)
    assert odd == "服务平台发现表单有误：联系电话：未被接受"
    assert "dependentSchemas" not in odd
    row = describe_row(State.REJECTED, "validation_failed|phone:pattern", {"phone": "联系电话"})
    assert row == "平台未受理：服务平台发现表单有误：联系电话：格式不对"
    assert describe_row(State.DELIVERED, "validation_failed|phone:pattern", LABELS_ZH) == "已送达"


def test_refused_fields_in_english() -> None:
    set_language("en")
    labels = {"phone": "Mobile phone number", "name": "Name"}
    assert describe_error(REFUSED, labels) == (
        "The platform found problems in the form: Mobile phone number: not in the expected "
        "format; Name: missing; address: too long; birth_date: not valid"
    )
    assert describe_error("validation_failed", labels) == (
        "The platform found problems in the form: -"
    )
    for raw in ("(pattern)", "(required)", "maxLength"):
        assert raw not in describe_error(REFUSED, labels)
