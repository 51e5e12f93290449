"""Form answers: conversion from what was typed, prefill from the card, validation with messages.

Validation runs the catalogue's JSON Schema (jsonschema, patterns on RE2) and turns each failure
into a message in the person's language, placed next to the field and in the summary. validate()
and validate_field() are pure and bounded (kiosk.limits): the UI may run them on any thread, and
each service's validator is built once (kiosk.catalogue.form_validator).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

from devices.identity import Identity
from kiosk.catalogue import ID_NUMBER_FORMAT, Question, Service, form_validator
from kiosk.i18n import N_, _, pick
from kiosk.limits import MAX_ANSWER_CHARS


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: str
    message: str


def validator_for(service: Service) -> Any:
    """The service's compiled form validator: cached, safe to share between threads."""
    return form_validator(service)


def prefill(service: Service, identity: Identity) -> dict[str, Any]:
    """The answers the card gives, for every question that names a prefill source."""
    values: dict[str, Any] = {
        "identity.name": identity.name,
        "identity.id_number": identity.id_number,
        "identity.sex": identity.sex.value,
        "identity.nation": identity.nation,
        "identity.birth_date": identity.birth_date.isoformat(),
        "identity.address": identity.address,
    }
    return {q.field: values[q.prefill] for q in service.questions if q.prefill in values}


def coerce(service: Service, field: str, raw: object) -> object:
    """Turn what a widget holds into the JSON value the schema expects; keep it if it cannot be."""
    prop = service.form.get("properties", {}).get(field, {})
    kind = prop.get("type") if isinstance(prop, Mapping) else None  # `true` is a schema too
    if isinstance(raw, str):
        text = raw.strip()
        if text == "":
            return None
        if kind == "integer":
            try:
                number = int(text)
            except ValueError:
                return text
            # Beyond 64 bits it is no count a form asks for, and jsonschema's multipleOf would
            # overflow converting it to a float: left as text, "type" reports it.
            return number if abs(number) < 2**63 else text
        if kind == "number":
            try:
                real = float(text)
            except ValueError:
                return text
            return real if math.isfinite(real) else text  # "nan" and "inf" pass every bound
        if kind == "boolean" and text in ("true", "false"):
            return text == "true"
        return text
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if isinstance(raw, float) and not math.isfinite(raw):
        return str(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 2**63:
        return str(raw)
    return raw


def clean_answers(service: Service, answers: Mapping[str, object]) -> dict[str, Any]:
    """Drop empty answers so that 'required' speaks for them; keep only the form's fields."""
    fields = {q.field for q in service.questions}
    cleaned: dict[str, Any] = {}
    for name, raw in answers.items():
        if name not in fields:
            continue
        value = coerce(service, name, raw)
        if value is not None:
            cleaned[name] = value
    return cleaned


_BY_KEYWORD = {
    "required": N_("Please answer this question."),
    "enum": N_("Please choose one of the options."),
    "const": N_("Please choose one of the options."),
    "minLength": N_("Please write at least {limit} characters."),
    "maxLength": N_("Please write no more than {limit} characters."),
    "minimum": N_("Please enter a number no smaller than {limit}."),
    "maximum": N_("Please enter a number no larger than {limit}."),
}
_BY_FORMAT = {
    ID_NUMBER_FORMAT: N_("This ID number is not valid. Please check every digit."),
    "date": N_("Please enter a date like 2026-11-23."),
}
_BY_TYPE = {
    "integer": N_("Please enter a number."),
    "number": N_("Please enter a number."),
    "boolean": N_("Please choose yes or no."),
}
_FALLBACK = N_("This answer cannot be accepted. Please check it or ask staff for help.")


def _message(question: Question | None, error: ValidationError) -> str:
    code = str(error.validator)
    value = error.validator_value
    if code in ("pattern", "format"):
        if question is not None and question.error:
            return pick(question.error)
        fmt = _BY_FORMAT.get(value) if code == "format" else None
        return _(fmt or N_("This does not look right. Please check it."))
    if code == "type":
        return _(_BY_TYPE.get(value, _FALLBACK))
    return _(_BY_KEYWORD.get(code, _FALLBACK)).format(limit=value)


def _field_of(error: ValidationError) -> str:
    return str(error.absolute_path[0]) if error.absolute_path else ""


def _answer_size(value: object) -> int:
    """Characters of text plus entries of lists and objects, counted until past the cap."""
    size, stack = 0, [value]
    while stack and size <= MAX_ANSWER_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, Mapping):
            size += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            size += 1 + len(item)
            stack.extend(item)
        else:
            size += 1
    return size


def _length_limit(service: Service, field: str) -> int:
    prop = service.form.get("properties", {}).get(field, {})
    own = prop.get("maxLength") if isinstance(prop, Mapping) else None
    if type(own) is int and 0 <= own < MAX_ANSWER_CHARS:
        return own
    return MAX_ANSWER_CHARS


def validate(service: Service, answers: Mapping[str, object]) -> list[FieldError]:
    """Every problem with the answers, in question order, one per field.

    An answer past MAX_ANSWER_CHARS is refused before the schema sees it, whatever the schema
    says, so that checking it costs a bounded time.
    """
    validator = validator_for(service)
    fields = {q.field for q in service.questions}
    found: dict[str, FieldError] = {}
    bounded: dict[str, object] = {}
    for name, raw in answers.items():
        if name not in fields:
            continue
        if _answer_size(raw) > MAX_ANSWER_CHARS:
            limit = _length_limit(service, name)
            message = _(_BY_KEYWORD["maxLength"]).format(limit=limit)
            found[name] = FieldError(name, "maxLength", message)
        else:
            bounded[name] = raw
    cleaned = clean_answers(service, bounded)
    for error in validator.iter_errors(cleaned):
        if error.validator == "required":
            for name in error.validator_value:
                if name not in cleaned and name not in found:
                    q = _question_or_none(service, name)
                    found[name] = FieldError(name, "required", _message(q, error))
            continue
        field = _field_of(error)
        if field in found:
            continue
        q = _question_or_none(service, field)
        found[field] = FieldError(field, str(error.validator), _message(q, error))
    order = {q.field: i for i, q in enumerate(service.questions)}
    return sorted(found.values(), key=lambda e: order.get(e.field, len(order)))


def validate_field(
    service: Service, field: str, answers: Mapping[str, object]
) -> FieldError | None:
    """The problem with one answer, if any: for checking a page before moving on."""
    for error in validate(service, answers):
        if error.field == field:
            return error
    return None


def _question_or_none(service: Service, field: str) -> Question | None:
    try:
        return service.question(field)
    except KeyError:
        return None


def display_value(question: Question, value: object) -> str:
    """How an answer reads on the review page and receipts."""
    if value is None or value == "":
        return _("(not answered)")
    if question.widget == "choice":
        return question.option_label(value)
    if question.widget == "yesno" or isinstance(value, bool):
        return _("Yes") if value in (True, "true") else _("No")
    return str(value)
