"""The catalogue loader and the form engine: checks and messages in the person's language."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from devices.identity import Identity, Sex
from kiosk.catalogue import (
    CatalogueError,
    UnknownServiceError,
    load_catalogue_file,
    parse_catalogue,
)
from kiosk.forms import clean_answers, display_value, prefill, validate, validate_field
from kiosk.i18n import set_language

CATALOGUE = Path(__file__).resolve().parents[2] / "assets" / "catalogue" / "demo_catalogue.json"

PERSON = Identity(
    name="张秀英",
    sex=Sex.FEMALE,
    nation="汉",
    birth_date=dt.date(1952, 3, 8),
    address="北京市东城区景山前街4号院2号楼3单元101室",
    id_number="110101195203080021",
    issuing_authority="北京市公安局东城分局",
    valid_from=dt.date(2016, 5, 20),
    valid_until=None,
)


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return data


def test_demo_catalogue_offers_three_services_with_guides(raw: dict[str, Any]) -> None:
    catalogue = parse_catalogue(raw)
    assert {"residence-permit", "pension-certification", "senior-card"} <= {
        s.id for s in catalogue.services
    }
    for service in catalogue.services:
        guide = service.guide
        assert guide.materials and guide.time_limit_days > 0
        for texts in (service.name, guide.audience, guide.fee, guide.time_limit, guide.collection):
            assert texts["zh_CN"] and texts["en"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("services"),
        lambda d: d["services"].clear(),
        lambda d: d["services"][0].pop("guide"),
        lambda d: d["services"][0]["questions"].pop(),
        lambda d: d["services"][0]["form"].update(type="array"),
        lambda d: d["services"][0]["form"]["properties"]["phone"].update(type="telephone"),
        lambda d: d["services"][0]["questions"][2].update(widget="slider"),
        lambda d: d["services"][0]["questions"][0].update(prefill="identity.shoe_size"),
        lambda d: d["services"].append(copy.deepcopy(d["services"][0])),
    ],
)
def test_a_damaged_catalogue_is_refused_with_a_message_for_people(
    raw: dict[str, Any], damage: Any
) -> None:
    damage(raw)
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(raw)
    assert "服务" in caught.value.user_message()  # zh_CN: the list of services could not be loaded
    assert caught.value.detail


def test_a_catalogue_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "catalogue.json"
    broken.write_bytes(b'{"services": [\x00\xff')
    with pytest.raises(CatalogueError):
        load_catalogue_file(broken)


def test_unknown_service_is_a_user_facing_error(raw: dict[str, Any]) -> None:
    with pytest.raises(UnknownServiceError) as caught:
        parse_catalogue(raw).service("no-such-service")
    assert caught.value.user_message() != caught.value.message  # translated


def test_prefill_comes_from_the_card(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("senior-card")
    answers = prefill(service, PERSON)
    assert answers["name"] == "张秀英"
    assert answers["id_number"] == "110101195203080021"
    assert answers["birth_date"] == "1952-03-08"
    assert answers["address"].startswith("北京市东城区")
    assert "phone" not in answers


def test_errors_are_in_chinese_by_default_and_english_on_request(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("residence-permit")
    answers = {"phone": "12345", "address": "短"}
    zh = {e.field: e for e in validate(service, answers)}
    assert zh["phone"].code == "pattern"
    assert "手机" in zh["phone"].message  # the catalogue's own pattern message
    assert zh["address"].code == "minLength"
    assert "6" in zh["address"].message and "字" in zh["address"].message
    assert zh["reason"].code == "required" and "请" in zh["reason"].message
    set_language("en")
    en = {e.field: e for e in validate(service, answers)}
    assert en["address"].message == "Please write at least 6 characters."
    assert en["reason"].message == "Please answer this question."
    # question order, one per field
    order = [q.field for q in service.questions]
    fields = [e.field for e in validate(service, answers)]
    assert fields == sorted(fields, key=order.index)


def test_id_number_format_uses_the_check_digit(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("residence-permit")
    good = {"id_number": "11010519491231002X"}
    assert validate_field(service, "id_number", good) is None
    error = validate_field(service, "id_number", {"id_number": "110105194912310021"})
    assert error is not None and error.code == "format"


def test_values_are_coerced_and_blank_answers_count_as_missing(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("pension-certification")
    cleaned = clean_answers(
        service, {"phone": " 13800138000 ", "bank_card_last4": "", "unknown": "x"}
    )
    assert cleaned == {"phone": "13800138000"}
    error = validate_field(service, "bank_card_last4", {"bank_card_last4": "   "})
    assert error is not None and error.code == "required"
    assert (
        validate_field(
            service, "living_at_registered_address", {"living_at_registered_address": False}
        )
        is None
    )


def test_date_answers_must_be_real_dates(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("residence-permit")
    assert validate_field(service, "residence_start", {"residence_start": "2026-02-30"}) is not None
    assert validate_field(service, "residence_start", {"residence_start": "2026-02-28"}) is None


def test_display_values_read_naturally(raw: dict[str, Any]) -> None:
    service = parse_catalogue(raw).service("residence-permit")
    reason = service.question("reason")
    assert display_value(reason, "work") == reason.option_label("work") != "work"
    assert display_value(service.question("phone"), None) == "（未填写）"
