"""The service catalogue: loading, consistency rules and validation of answers against a form."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from referencing import Registry

from devices.identity import is_valid_id_number

from .models import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_BYTES

LANGUAGES = ("zh_CN", "en")
WIDGETS = frozenset(
    {"text", "phone", "id_number", "date", "choice", "yesno", "number", "address"}
)
PREFILLS = frozenset(
    {
        "identity.name",
        "identity.id_number",
        "identity.sex",
        "identity.nation",
        "identity.birth_date",
        "identity.address",
    }
)
GUIDE_TEXTS = ("audience", "fee", "time_limit", "collection")
ATTACHMENT_LIMITS_MEMBER = "attachment_limits"
TRACKING_MEMBER = "tracking"
TRACKING_PATH = "/track"
_SERVED_BASES = 16  # the Host header picks the base when no public URL is set: a bounded cache


def attachment_limits() -> dict[str, int]:
    """What the platform takes with one submission, as the catalogue announces it."""
    return {
        "max_files": MAX_ATTACHMENTS,
        "max_file_bytes": MAX_ATTACHMENT_BYTES,
        "max_total_bytes": MAX_ATTACHMENTS_BYTES,
    }


def tracking_public_url(public_url: str | None, base_url: str) -> str:
    """Where citizens follow their cases: the platform's public URL (its option), else the
    address the request came in on, and then /track."""
    base = public_url if public_url is not None else base_url
    return base.rstrip("/") + TRACKING_PATH


class ServedCatalogue:
    """The catalogue as terminals get it: with the tracking page's address, signed (sign:
    refplatform.keys.PlatformKeys.sign_catalogue) and encoded once per address."""

    def __init__(
        self,
        catalogue: Catalogue,
        sign: Callable[[Mapping[str, Any]], dict[str, Any]],
        public_url: str | None,
    ) -> None:
        self._doc = catalogue.doc
        self._sign = sign
        self._public_url = public_url
        self._lock = threading.Lock()
        self._served: dict[str, bytes] = {}

    def content(self, base_url: str) -> bytes:
        """The signed JSON. The tracking address is announced only when the platform was given
        its public address: one taken from a request (its Host header) is never signed, or a
        forged Host would get a genuine catalogue sending receipt codes elsewhere. Without it
        terminals fall back to their own platform address. base_url is not used for it."""
        del base_url
        url = (
            tracking_public_url(self._public_url, "") if self._public_url is not None else ""
        )
        with self._lock:
            cached = self._served.get(url)
        if cached is not None:
            return cached
        doc = {**self._doc, TRACKING_MEMBER: {"public_url": url}} if url else dict(self._doc)
        encoded = json.dumps(self._sign(doc), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if len(self._served) >= _SERVED_BASES:
                self._served.clear()
            self._served[url] = encoded.encode("utf-8")
        return encoded.encode("utf-8")


class CatalogueError(ValueError):
    """The catalogue file breaks the format of docs/api.md."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One failed check of an answer: the property name ("" for the form) and the keyword."""

    field: str
    code: str


def _cn_id_number(instance: object) -> bool:
    # Formats only constrain strings; a wrong type is reported by "type".
    return not isinstance(instance, str) or is_valid_id_number(instance)


def format_checker() -> FormatChecker:
    """The standard formats plus the resident ID number with its GB 11643 check character."""
    checker = FormatChecker()
    checker.checks("cn-id-number")(_cn_id_number)
    return checker


def _is_text(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(lang), str) and value[lang].strip() for lang in LANGUAGES
    )


def check_catalogue(doc: object) -> list[str]:
    """Every way doc breaks the catalogue format, as readable lines; empty when it is sound."""
    if not isinstance(doc, dict):
        return ["the catalogue is not a JSON object"]
    problems: list[str] = []
    if not isinstance(doc.get("version"), str) or not doc["version"]:
        problems.append("version: missing")
    services = doc.get("services")
    if not isinstance(services, list) or not services:
        return [*problems, "services: missing or empty"]
    seen: set[str] = set()
    for index, service in enumerate(services):
        where = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{where}: not an object")
            continue
        sid = service.get("id")
        if not isinstance(sid, str) or not sid:
            problems.append(f"{where}.id: missing")
        elif sid in seen:
            problems.append(f"{where}.id: {sid} appears twice")
        else:
            seen.add(sid)
            where = sid
        problems.extend(_check_service(where, service))
    return problems


def _check_guide(where: str, guide: object) -> list[str]:
    if not isinstance(guide, dict):
        return [f"{where}.guide: missing"]
    problems = [
        f"{where}.guide.{key}: needs zh_CN and en"
        for key in GUIDE_TEXTS
        if not _is_text(guide.get(key))
    ]
    materials = guide.get("materials")
    if not isinstance(materials, list) or not materials:
        problems.append(f"{where}.guide.materials: missing or empty")
    else:
        problems.extend(
            f"{where}.guide.materials[{i}]: needs zh_CN and en"
            for i, item in enumerate(materials)
            if not _is_text(item)
        )
    days = guide.get("time_limit_days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        problems.append(f"{where}.guide.time_limit_days: not a whole number of days")
    return problems


def _check_service(where: str, service: dict[str, Any]) -> list[str]:
    problems = [
        f"{where}.{key}: needs zh_CN and en"
        for key in ("name", "summary", "department")
        if not _is_text(service.get(key))
    ]
    problems.extend(_check_guide(where, service.get("guide")))
    form = service.get("form")
    if not isinstance(form, dict):
        return [*problems, f"{where}.form: missing"]
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as exc:
        problems.append(f"{where}.form: not a valid JSON Schema 2020-12: {exc.message}")
    if form.get("type") != "object" or form.get("additionalProperties") is not False:
        problems.append(f'{where}.form: needs "type": "object" and "additionalProperties": false')
    properties = form.get("properties")
    if not isinstance(properties, dict):
        return [*problems, f"{where}.form.properties: missing"]
    questions = service.get("questions")
    if not isinstance(questions, list) or not questions:
        return [*problems, f"{where}.questions: missing or empty"]
    fields: list[str] = []
    for i, question in enumerate(questions):
        if not isinstance(question, dict):
            problems.append(f"{where}.questions[{i}]: not an object")
            continue
        fields.append(str(question.get("field")))
        problems.extend(_check_question(f"{where}.questions[{i}]", question, properties))
    for name in properties:
        if name not in fields:
            problems.append(f"{where}.form.properties.{name}: has no question")
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    problems.extend(f"{where}.questions: {name} asked twice" for name in duplicates)
    return problems


def _check_question(
    where: str, question: dict[str, Any], properties: Mapping[str, Any]
) -> list[str]:
    problems: list[str] = []
    field = question.get("field")
    if field not in properties:
        problems.append(f"{where}.field: {field!r} is not a property of the form")
    for key in ("label", "help"):
        if not _is_text(question.get(key)):
            problems.append(f"{where}.{key}: needs zh_CN and en")
    if "error" in question and not _is_text(question["error"]):
        problems.append(f"{where}.error: needs zh_CN and en")
    widget = question.get("widget")
    if widget not in WIDGETS:
        problems.append(f"{where}.widget: {widget!r} is not one of {sorted(WIDGETS)}")
    prefill = question.get("prefill")
    if prefill is not None and prefill not in PREFILLS:
        problems.append(f"{where}.prefill: {prefill!r} is not a card field")
    if not isinstance(question.get("readonly"), bool):
        problems.append(f"{where}.readonly: not true or false")
    elif question["readonly"] and prefill is None:
        problems.append(f"{where}.readonly: a read-only answer needs a prefill")
    if widget == "choice":
        raw = question.get("options")
        options: list[object] = list(raw) if isinstance(raw, list) else []
        labelled = [o for o in options if isinstance(o, dict) and _is_text(o.get("label"))]
        if not options or len(labelled) != len(options):
            problems.append(f"{where}.options: a choice needs options with labels")
        values = sorted(str(o.get("value")) for o in labelled)
        schema = properties.get(str(field), {})
        if isinstance(schema, dict) and sorted(map(str, schema.get("enum", []))) != values:
            problems.append(f"{where}.options: values differ from the schema's enum")
    return problems


def load_catalogue(path: Path) -> dict[str, Any]:
    """Read and check a catalogue file; raise CatalogueError naming every problem."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue: {exc}") from exc
    problems = check_catalogue(doc)
    if problems:
        raise CatalogueError(f"{path}: " + "; ".join(problems))
    return dict(doc)


class Catalogue:
    """A checked catalogue and one validator per service form."""

    def __init__(self, doc: dict[str, Any]) -> None:
        problems = check_catalogue(doc)
        if problems:
            raise CatalogueError("; ".join(problems))
        # The limits are the platform's own (what a submission request may carry), served with
        # every catalogue whatever its file says, so terminals refuse a file before saving it.
        self.doc = {**doc, ATTACHMENT_LIMITS_MEMBER: attachment_limits()}
        self.version: str = doc["version"]
        self._services: dict[str, dict[str, Any]] = {s["id"]: s for s in doc["services"]}
        checker = format_checker()
        self._validators = {
            # an empty registry: a form's $ref never makes the platform fetch anything
            sid: Draft202012Validator(s["form"], format_checker=checker, registry=Registry())
            for sid, s in self._services.items()
        }

    @classmethod
    def from_file(cls, path: Path) -> Catalogue:
        return cls(load_catalogue(path))

    def service(self, service_id: str) -> dict[str, Any] | None:
        return self._services.get(service_id)

    def validate_answers(self, service_id: str, answers: object) -> list[FieldProblem]:
        """Every failed keyword of answers against the service's form, sorted and unique."""
        validator = self._validators[service_id]
        properties = self._services[service_id]["form"].get("properties", {})
        found: set[FieldProblem] = set()
        for error in validator.iter_errors(answers):
            code = str(error.validator)
            if error.path:
                found.add(FieldProblem(str(error.path[0]), code))
            elif code == "required" and isinstance(error.instance, dict):
                required: list[str] = list(error.validator_value or ())
                found.update(
                    FieldProblem(name, code) for name in required if name not in error.instance
                )
            elif code == "additionalProperties" and isinstance(error.instance, dict):
                found.update(
                    FieldProblem(str(name), code)
                    for name in error.instance
                    if name not in properties
                )
            else:
                found.add(FieldProblem("", code))
        return sorted(found, key=lambda p: (p.field, p.code))
