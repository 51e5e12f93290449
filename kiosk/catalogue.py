"""The service catalogue: services, their guides and form schemas, parsed and checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from kiosk.errors import UserFacingError
from kiosk.i18n import N_, pick

Texts = Mapping[str, str]

WIDGETS = frozenset({"text", "phone", "id_number", "date", "choice", "yesno", "number"})
PREFILL_SOURCES = frozenset(
    {
        "identity.name",
        "identity.id_number",
        "identity.sex",
        "identity.nation",
        "identity.birth_date",
        "identity.address",
    }
)


class CatalogueError(UserFacingError):
    """The catalogue could not be used; the detail is for the log, the message for people."""

    def __init__(self, detail: str) -> None:
        super().__init__(N_("The list of services could not be loaded. Please ask staff for help."))
        self.detail = detail


class UnknownServiceError(UserFacingError):
    def __init__(self, service_id: str) -> None:
        super().__init__(N_("This service is not offered at this terminal."))
        self.service_id = service_id


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: Texts


@dataclass(frozen=True, slots=True)
class Question:
    field: str
    label: Texts
    help: Texts
    widget: str
    prefill: str | None
    readonly: bool
    error: Texts
    options: tuple[Option, ...]
    required: bool

    def option_label(self, value: object) -> str:
        for option in self.options:
            if option.value == value:
                return pick(option.label)
        return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Guide:
    audience: Texts
    materials: tuple[Texts, ...]
    fee: Texts
    time_limit: Texts
    time_limit_days: int
    collection: Texts


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: Texts
    summary: Texts
    department: Texts
    guide: Guide
    form: Mapping[str, Any]
    questions: tuple[Question, ...]

    def question(self, field: str) -> Question:
        for question in self.questions:
            if question.field == field:
                return question
        raise KeyError(field)


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    services: tuple[Service, ...]

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.id == service_id:
                return service
        raise UnknownServiceError(service_id)


def _texts(value: Any, where: str) -> Texts:
    if isinstance(value, str):
        return {"zh_CN": value, "en": value}
    if not isinstance(value, dict) or not value:
        raise CatalogueError(f"{where}: expected a text object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CatalogueError(f"{where}: texts must be strings")
    return dict(value)


def _optional_texts(value: Any, where: str) -> Texts:
    return {} if value in (None, "", {}) else _texts(value, where)


def _question(raw: Any, where: str, required: frozenset[str]) -> Question:
    if not isinstance(raw, dict) or not isinstance(raw.get("field"), str):
        raise CatalogueError(f"{where}: a question needs a field name")
    widget = raw.get("widget", "text")
    if widget not in WIDGETS:
        raise CatalogueError(f"{where}: unknown widget {widget!r}")
    prefill = raw.get("prefill")
    if prefill is not None and prefill not in PREFILL_SOURCES:
        raise CatalogueError(f"{where}: unknown prefill source {prefill!r}")
    options = tuple(
        Option(value=str(o["value"]), label=_texts(o.get("label"), f"{where}.options"))
        for o in raw.get("options") or ()
    )
    if widget == "choice" and not options:
        raise CatalogueError(f"{where}: a choice needs options")
    return Question(
        field=raw["field"],
        label=_texts(raw.get("label"), f"{where}.label"),
        help=_optional_texts(raw.get("help"), f"{where}.help"),
        widget=widget,
        prefill=prefill,
        readonly=bool(raw.get("readonly", False)),
        error=_optional_texts(raw.get("error"), f"{where}.error"),
        options=options,
        required=raw["field"] in required,
    )


def _service(raw: Any, index: int) -> Service:
    where = f"services[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise CatalogueError(f"{where}: a service needs an id")
    form = raw.get("form")
    if not isinstance(form, dict) or form.get("type") != "object":
        raise CatalogueError(f"{where}: the form must be an object schema")
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as exc:
        raise CatalogueError(f"{where}: invalid form schema: {exc.message}") from exc
    properties = form.get("properties") or {}
    required = frozenset(form.get("required") or ())
    guide_raw = raw.get("guide")
    if not isinstance(guide_raw, dict):
        raise CatalogueError(f"{where}: the service guide is missing")
    guide = Guide(
        audience=_texts(guide_raw.get("audience"), f"{where}.guide.audience"),
        materials=tuple(
            _texts(m, f"{where}.guide.materials") for m in guide_raw.get("materials") or ()
        ),
        fee=_texts(guide_raw.get("fee"), f"{where}.guide.fee"),
        time_limit=_texts(guide_raw.get("time_limit"), f"{where}.guide.time_limit"),
        time_limit_days=int(guide_raw.get("time_limit_days") or 0),
        collection=_texts(guide_raw.get("collection"), f"{where}.guide.collection"),
    )
    questions = tuple(
        _question(q, f"{where}.questions[{i}]", required)
        for i, q in enumerate(raw.get("questions") or ())
    )
    if not questions:
        raise CatalogueError(f"{where}: the form has no questions")
    fields = [q.field for q in questions]
    if len(set(fields)) != len(fields) or set(fields) != set(properties):
        raise CatalogueError(f"{where}: questions and form properties do not match")
    return Service(
        id=raw["id"],
        name=_texts(raw.get("name"), f"{where}.name"),
        summary=_optional_texts(raw.get("summary"), f"{where}.summary"),
        department=_optional_texts(raw.get("department"), f"{where}.department"),
        guide=guide,
        form=form,
        questions=questions,
    )


def parse_catalogue(data: Any) -> Catalogue:
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise CatalogueError("the catalogue must be an object with a list of services")
    services = tuple(_service(raw, i) for i, raw in enumerate(data["services"]))
    if not services:
        raise CatalogueError("the catalogue offers no services")
    ids = [s.id for s in services]
    if len(set(ids)) != len(ids):
        raise CatalogueError("two services share an id")
    return Catalogue(version=str(data.get("version", "")), services=services)


def load_catalogue_file(path: Path) -> Catalogue:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path.name}: {type(exc).__name__}") from exc
    return parse_catalogue(data)
