"""The reference platform's parts without a server: catalogue rules, hashing, OpenAPI document."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from refplatform.app import DEFAULT_CATALOGUE, create_app, openapi_text
from refplatform.catalogue import Catalogue, CatalogueError, FieldProblem, check_catalogue
from refplatform.storage import canonical_hash

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    return doc


def test_committed_openapi_is_up_to_date(tmp_path: Path) -> None:
    app = create_app(tmp_path / "platform.sqlite3", DEFAULT_CATALOGUE)
    committed = (REPO / "refplatform" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_text(app), (
        "refplatform/openapi.json is stale: "
        "run python -m refplatform --write-openapi refplatform/openapi.json"
    )


def test_demo_catalogue_is_sound(demo: dict[str, Any]) -> None:
    assert check_catalogue(demo) == []


def _broken(demo: dict[str, Any], damage: Any) -> list[str]:
    doc = copy.deepcopy(demo)
    damage(doc["services"][0])
    return check_catalogue(doc)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda s: s["questions"].pop(), "has no question"),
        (lambda s: s["form"]["properties"].pop("phone"), "is not a property of the form"),
        (lambda s: s["guide"]["fee"].pop("en"), "guide.fee: needs zh_CN and en"),
        (lambda s: s["guide"]["materials"].clear(), "materials: missing or empty"),
        (lambda s: s["guide"].pop("time_limit_days"), "time_limit_days"),
        (lambda s: s["questions"][0].update(widget="slider"), "widget"),
        (lambda s: s["questions"][0].update(prefill="identity.photo"), "prefill"),
        (lambda s: s["questions"][2].update(readonly=True), "needs a prefill"),
        (lambda s: s["form"].pop("additionalProperties"), "additionalProperties"),
        (lambda s: s["form"]["properties"]["phone"].update(type="telephone"), "JSON Schema"),
        (lambda s: s["questions"].append(s["questions"][0]), "asked twice"),
        (lambda s: s["questions"][4]["options"].pop(), "differ from the schema's enum"),
        (lambda s: s["name"].update(zh_CN=" "), "name: needs zh_CN and en"),
    ],
)
def test_catalogue_rules_catch_damage(demo: dict[str, Any], damage: Any, expected: str) -> None:
    problems = _broken(demo, damage)
    assert any(expected in p for p in problems), problems


def test_catalogue_refuses_duplicate_services(demo: dict[str, Any]) -> None:
    doc = copy.deepcopy(demo)
    doc["services"].append(doc["services"][0])
    with pytest.raises(CatalogueError, match="appears twice"):
        Catalogue(doc)


def test_answers_are_checked_with_id_number_format(demo: dict[str, Any]) -> None:
    catalogue = Catalogue(demo)
    good = {
        "name": "王秀英",
        "id_number": "11010519491231002X",
        "phone": "13800138000",
        "living_at_registered_address": True,
        "receiving_other_pension": False,
        "bank_card_last4": "0427",
    }
    assert catalogue.validate_answers("pension-certification", good) == []
    bad = {**good, "id_number": "11010519491231002x"[:-1] + "3"}
    assert catalogue.validate_answers("pension-certification", bad) == [
        FieldProblem("id_number", "format")
    ]
    assert catalogue.validate_answers("pension-certification", []) == [FieldProblem("", "type")]


def test_canonical_hash_ignores_spelling_not_content() -> None:
    a = {"b": [1, 2], "a": {"y": "值", "x": None}}
    b = json.loads('{"a": {"x": null, "y": "\\u503c"}, "b": [1, 2]}')
    assert canonical_hash(a) == canonical_hash(b)
    assert canonical_hash(a) != canonical_hash({**a, "b": [2, 1]})
