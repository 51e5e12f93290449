"""The service catalogue: services, their guides and form schemas, parsed and checked.

The catalogue comes from the network, so a form schema is held to what the terminal can check in
bounded time without going anywhere else: references stay inside the form, patterns run on RE2
(linear time, no backreferences or lookaround), and sizes are capped (kiosk.limits). A catalogue
that breaks any of this is refused as a whole, with a detail naming the service and the field.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from devices.identity import is_valid_id_number
from kiosk import limits
from kiosk.errors import UserFacingError
from kiosk.i18n import N_, pick
from offline_queue.outbox import AttachmentLimits as OutboxLimits

Texts = Mapping[str, str]

WIDGETS = frozenset({"text", "phone", "id_number", "date", "choice", "yesno", "number", "address"})
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
ID_NUMBER_FORMAT = "cn-id-number"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DIALECTS = frozenset({DIALECT, DIALECT + "#"})
# Keywords that make jsonschema evaluate parts of a form again for every use (cost multiplies with
# nesting); additionalProperties says the same for a questionnaire at a bounded cost.
_UNSUPPORTED = ("unevaluatedProperties", "unevaluatedItems")
# Formats whose checks run in linear time on the answer (stdlib parsers). Others are not asserted
# by the terminal, as before; the platform checks them on submission.
_LINEAR_FORMATS = ("date", "time", "email", "idn-email", "ipv4", "ipv6", "uuid")


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


# What the outbox holds with one submission; the platform may announce less, never more.
_OUTBOX_LIMITS = OutboxLimits()


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """The files one submission may carry: what the platform announces, capped at the outbox's
    own limits (the smaller wins), or the outbox's limits when the platform announces none."""

    max_files: int = _OUTBOX_LIMITS.max_files
    max_file_bytes: int = _OUTBOX_LIMITS.max_file_bytes
    max_total_bytes: int = _OUTBOX_LIMITS.max_total_bytes


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    services: tuple[Service, ...]
    attachment_limits: AttachmentLimits = field(default_factory=AttachmentLimits)
    # Where citizens follow their cases online, as the platform announces it; None when the
    # catalogue does not say (the bundled copy, an older platform).
    tracking_url: str | None = None

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.id == service_id:
                return service
        raise UnknownServiceError(service_id)


# -- patterns on RE2 -------------------------------------------------------------------------------


class PatternError(ValueError):
    """A pattern the terminal will not run; str() says why, in English, for the log."""


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported once, as a CatalogueError
    options.max_mem = limits.PATTERN_MAX_MEMORY
    return options


_RE2_OPTIONS = _re2_options()


def _re2_reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else ""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason) or type(exc).__name__


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program for a catalogue pattern; PatternError when it is refused.

    Only catalogue patterns come here: the cache must never hold what a person typed.
    """
    if len(pattern) > limits.MAX_PATTERN_CHARS:
        raise PatternError(f"longer than {limits.MAX_PATTERN_CHARS} characters")
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise PatternError(
            f"RE2 cannot run it ({_re2_reason(exc)}); backreferences and lookaround "
            "are not supported"
        ) from exc
    if compiled.programsize > limits.MAX_PATTERN_PROGRAM:
        raise PatternError(
            f"it compiles to {compiled.programsize} instructions, "
            f"more than {limits.MAX_PATTERN_PROGRAM}"
        )
    return compiled


def _is_regex(instance: object) -> bool:
    # The "regex" format, for answers and for the patterns in a form while its schema is checked.
    # Not cached: an answer is personal data.
    if not isinstance(instance, str):
        return True
    try:
        re2.compile(instance, _RE2_OPTIONS)
    except re2.error:
        return False
    return True


def _is_id_number(instance: object) -> bool:
    # Formats only constrain strings; a wrong type is reported by "type".
    return not isinstance(instance, str) or is_valid_id_number(instance)


def _format_checker() -> FormatChecker:
    known = FormatChecker.checkers
    checker = FormatChecker(formats=[name for name in _LINEAR_FORMATS if name in known])
    checker.checks("regex")(_is_regex)
    checker.checks(ID_NUMBER_FORMAT)(_is_id_number)
    return checker


FORMAT_CHECKER = _format_checker()


def _pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and compile_pattern(pattern).search(instance) is None:
        # Without the answer itself: it may be personal data and errors reach logs.
        yield ValidationError("the answer does not match the pattern")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):  # what jsonschema's type "object" means
        return
    for pattern, subschema in patterns.items():
        compiled = compile_pattern(pattern)
        for name, value in instance.items():
            if compiled.search(name) is not None:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [
        name
        for name in instance
        if name not in properties and not any(p.search(name) is not None for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        yield ValidationError(f"{len(extras)} answers are not questions of this form")


# jsonschema's own pattern keywords run Python's backtracking `re`; these run RE2.
FormValidator: Any = validators.extend(
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
    format_checker=FORMAT_CHECKER,
)


# -- form schema checks ----------------------------------------------------------------------------


def _walk(root: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every object and array in a JSON document with its path, parents first. Depth is
    checked before."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            items: list[tuple[str, Any]] = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, list):
            items = [(str(i), v) for i, v in enumerate(node)]
        else:
            continue
        # Values other than objects and arrays have no keywords to look at: not walked.
        stack.extend(((*path, k), v) for k, v in reversed(items) if isinstance(v, dict | list))


def _objects_past(root: Any, limit: int) -> int:
    """How many JSON objects root holds, counting stops soon after `limit`."""
    count, stack = 0, [root]
    while stack and count <= limit:
        node = stack.pop()
        if isinstance(node, dict):
            count += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _too_deep(root: Any, limit: int) -> bool:
    """More than `limit` nested objects and arrays; stops early, so it is safe on any depth."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _pointer(path: tuple[str, ...]) -> str:
    pointer = "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)
    return pointer if len(pointer) <= 200 else pointer[:200] + "…"


def _at(where: str, path: tuple[str, ...]) -> str:
    """Where in a form a problem is, for the log: the service, the field, the JSON pointer."""
    if len(path) >= 2 and path[0] == "properties":
        return f"{where}, field {path[1][:80]!r} ({_pointer(path)})"
    return f"{where}, form {_pointer(path)}"


def _patterns_of(node: Mapping[str, Any]) -> list[str]:
    patterns = []
    if isinstance(node.get("pattern"), str):
        patterns.append(node["pattern"])
    if isinstance(node.get("patternProperties"), dict):
        patterns.extend(k for k in node["patternProperties"] if isinstance(k, str))
    return patterns


def _check_keywords(form: Mapping[str, Any], where: str) -> None:
    dialect = form.get("$schema", DIALECT)
    if not isinstance(dialect, str) or dialect not in _DIALECTS:
        raise CatalogueError(
            f"{where}: the form must be JSON Schema 2020-12 ($schema {str(dialect)[:80]!r})"
        )
    program = 0
    for path, node in _walk(form):
        if isinstance(node, list) and len(node) > limits.MAX_SCHEMA_ARRAY:
            # An enum is compared item by item with every answer.
            raise CatalogueError(
                f"{_at(where, path)}: an array of more than {limits.MAX_SCHEMA_ARRAY} items"
            )
        if not isinstance(node, dict):
            continue
        if path:
            # jsonschema switches to another validator class where a subschema names $schema,
            # and that class would run patterns on Python's re; a nested $id moves the base of
            # references. A form needs neither.
            for keyword in ("$schema", "$id"):
                if keyword in node:
                    raise CatalogueError(
                        f"{_at(where, path)}: {keyword} is allowed only at the top of the form"
                    )
        for keyword in _UNSUPPORTED:
            if keyword in node:
                raise CatalogueError(f"{_at(where, path)}: {keyword} is not supported")
        for pattern in _patterns_of(node):
            try:
                program += compile_pattern(pattern).programsize
            except PatternError as exc:
                raise CatalogueError(
                    f"{_at(where, path)}: pattern {pattern[:80]!r} refused: {exc}"
                ) from exc
    if program > limits.MAX_FORM_PATTERN_PROGRAM:
        raise CatalogueError(
            f"{where}: the form's patterns compile to {program} instructions, "
            f"more than {limits.MAX_FORM_PATTERN_PROGRAM}"
        )


def _check_schema(schema: Any, at: str) -> None:
    try:
        FormValidator.check_schema(schema, format_checker=FORMAT_CHECKER)
    except SchemaError as exc:
        raise CatalogueError(f"{at}: invalid form schema: {exc.message[:200]}") from exc


# Where JSON Schema 2020-12 holds subschemas, so where check_schema of the whole form looked.
_SUBSCHEMA = frozenset(
    {
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SUBSCHEMA_MAPS = frozenset({"$defs", "dependentSchemas", "patternProperties", "properties"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})


def _in_checked_place(ref: str) -> bool:
    """Whether a reference lands on a subschema position of the form (or on an anchor, which only
    subschemas define), where checking the whole form against the metaschema already looked."""
    fragment = ref.partition("#")[2]
    if not fragment.startswith("/"):
        return True
    parts = [p.replace("~1", "/").replace("~0", "~") for p in unquote(fragment[1:]).split("/")]
    i = 0
    while i < len(parts):
        if parts[i] in _SUBSCHEMA:
            i += 1
        elif parts[i] in _SUBSCHEMA_MAPS or parts[i] in _SUBSCHEMA_LISTS:
            i += 2
        else:
            return False
    return i == len(parts)


class _References:
    """Every $ref and $dynamicRef points inside the form, without loops, and following them keeps
    the form within the node and depth caps (a chain of references can multiply its size)."""

    def __init__(self, form: Mapping[str, Any], where: str) -> None:
        self._where = where
        self._resolver = Registry().resolver_with_root(DRAFT202012.create_resource(form))
        self._dynamic_anchors: dict[str, list[Any]] = {}
        for _path, node in _walk(form):
            if isinstance(node, dict) and isinstance(node.get("$dynamicAnchor"), str):
                self._dynamic_anchors.setdefault(node["$dynamicAnchor"], []).append(node)
        self._measured: dict[int, tuple[int, int]] = {}  # id -> (nodes, depth), references in
        self._visiting: set[int] = set()
        self._schema_checked: set[int] = {id(form)}
        self._measure(form, (), 1)

    def _targets(self, node: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[Any]:
        at = _at(self._where, path)
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue  # a property named like the keyword; a wrong type fails check_schema
            try:
                resolved = self._resolver.lookup(ref)
            except (Unresolvable, ValueError) as exc:
                raise CatalogueError(
                    f"{at}: {keyword} {ref[:80]!r} does not point inside the form"
                ) from exc
            target = resolved.contents
            if not isinstance(target, dict | bool):
                raise CatalogueError(f"{at}: {keyword} {ref[:80]!r} does not point at a schema")
            if not _in_checked_place(ref) and id(target) not in self._schema_checked:
                # A pointer into, say, an unknown keyword leads where check_schema never looked.
                _check_schema(target, at)
                self._schema_checked.add(id(target))
            yield target
            anchor = ref.partition("#")[2]
            if keyword == "$dynamicRef" and anchor and "/" not in anchor:
                # Where it lands depends on the path taken: count every place it could.
                yield from self._dynamic_anchors.get(anchor, [])

    def _measure(self, node: Any, path: tuple[str, ...], level: int) -> tuple[int, int]:
        """(schema objects, nesting) of node with its references followed; level is its own
        nesting, so that a long chain of references stops at the cap, not at Python's stack."""
        if not isinstance(node, dict | list):
            return 0, 0
        key = id(node)
        known = self._measured.get(key)
        if level > limits.MAX_SCHEMA_DEPTH or (
            known is not None and level + known[1] - 1 > limits.MAX_SCHEMA_DEPTH
        ):
            raise CatalogueError(
                f"{_at(self._where, path)}: the form nests more than {limits.MAX_SCHEMA_DEPTH} "
                "deep once its references are followed"
            )
        if known is not None:
            return known
        if key in self._visiting:
            raise CatalogueError(f"{_at(self._where, path)}: the form refers to itself in a loop")
        self._visiting.add(key)
        if isinstance(node, dict):
            children = [((*path, str(k)), v) for k, v in node.items() if isinstance(v, dict | list)]
            children += [(path, target) for target in self._targets(node, path)]
        else:
            children = [
                ((*path, str(i)), v) for i, v in enumerate(node) if isinstance(v, dict | list)
            ]
        nodes, depth = (1 if isinstance(node, dict) else 0), 0
        for child_path, child in children:
            child_nodes, child_depth = self._measure(child, child_path, level + 1)
            nodes += child_nodes
            depth = max(depth, child_depth)
            if nodes > limits.MAX_SCHEMA_NODES:
                raise CatalogueError(
                    f"{self._where}: the form has more than {limits.MAX_SCHEMA_NODES} "
                    "objects once its references are followed"
                )
        depth += 1
        self._visiting.discard(key)
        self._measured[key] = (nodes, depth)
        return nodes, depth


def check_form(form: Mapping[str, Any], where: str) -> Any:
    """Refuse a form the terminal cannot check safely; return a validator for one that it can.

    The validator resolves references in an empty registry: nothing is ever fetched, and a
    reference that is not inside the form cannot be followed even if a check above missed it.
    """
    if _too_deep(form, limits.MAX_SCHEMA_DEPTH):
        raise CatalogueError(f"{where}: the form nests more than {limits.MAX_SCHEMA_DEPTH} deep")
    if _objects_past(form, limits.MAX_SCHEMA_NODES) > limits.MAX_SCHEMA_NODES:
        # Before check_schema, whose cost grows with every object.
        raise CatalogueError(f"{where}: the form has more than {limits.MAX_SCHEMA_NODES} objects")
    _check_keywords(form, where)
    _check_schema(form, where)
    _References(form, where)
    # $schema names the dialect, already checked; left at the top, jsonschema would pick its
    # stock validator class (Python re) wherever a reference leads back to the top.
    schema = {k: v for k, v in form.items() if k != "$schema"}
    return FormValidator(schema, registry=Registry(), format_checker=FORMAT_CHECKER)


# Validators built for Service objects, most recent last. Keyed by identity (a Service holds a
# dict, so it has no hash); the entry keeps the Service alive, so its id cannot be reused while the
# entry exists. Room for a fresh catalogue and the one it replaces.
_VALIDATORS: OrderedDict[int, tuple[Service, Any]] = OrderedDict()
_VALIDATORS_LOCK = threading.Lock()
_VALIDATORS_KEPT = 2 * limits.MAX_SERVICES


def _remember(service: Service, validator: Any) -> None:
    # Caller holds _VALIDATORS_LOCK.
    _VALIDATORS[id(service)] = (service, validator)
    _VALIDATORS.move_to_end(id(service))
    while len(_VALIDATORS) > _VALIDATORS_KEPT:
        _VALIDATORS.popitem(last=False)


def form_validator(service: Service) -> Any:
    """The validator of a service's form, built and checked once per Service; any thread.

    CatalogueError when the form is one the terminal refuses (a Service not made by
    parse_catalogue).
    """
    with _VALIDATORS_LOCK:
        entry = _VALIDATORS.get(id(service))
        if entry is not None and entry[0] is service:
            _VALIDATORS.move_to_end(id(service))
            return entry[1]
        # Built under the lock: one validator per service even when threads ask at once; building
        # is bounded by the caps and happens once, mostly while the catalogue is parsed.
        validator = check_form(service.form, f"service {service.id!r}")
        _remember(service, validator)
        return validator


# -- catalogue parsing -----------------------------------------------------------------------------


def _name(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise CatalogueError(f"{where}: {what} needs a name")
    if len(value) > limits.MAX_NAME_CHARS:
        raise CatalogueError(f"{where}: {what} is longer than {limits.MAX_NAME_CHARS} characters")
    return value


def _texts(value: Any, where: str) -> Texts:
    if isinstance(value, str):
        value = {"zh_CN": value, "en": value}
    if not isinstance(value, dict) or not value:
        raise CatalogueError(f"{where}: expected a text object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CatalogueError(f"{where}: texts must be strings")
    if len(value) > 16 or any(len(v) > limits.MAX_TEXT_CHARS for v in value.values()):
        raise CatalogueError(f"{where}: a text is longer than {limits.MAX_TEXT_CHARS} characters")
    return dict(value)


def _optional_texts(value: Any, where: str) -> Texts:
    return {} if value in (None, "", {}) else _texts(value, where)


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogueError(f"{where}: expected a list")
    if len(value) > limit:
        raise CatalogueError(f"{where}: more than {limit} entries")
    return value


def _option(raw: Any, where: str) -> Option:
    if not isinstance(raw, dict) or "value" not in raw:
        raise CatalogueError(f"{where}: an option needs a value")
    value = raw["value"]
    if isinstance(value, dict | list) or len(str(value)) > limits.MAX_NAME_CHARS:
        raise CatalogueError(f"{where}: an option's value must be a short text or number")
    return Option(value=str(value), label=_texts(raw.get("label"), where))


def _question(raw: Any, where: str, required: frozenset[str]) -> Question:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a question needs a field name")
    field = _name(raw.get("field"), "a question", where)
    widget = raw.get("widget", "text")
    if widget not in WIDGETS:
        raise CatalogueError(f"{where}: unknown widget {str(widget)[:40]!r}")
    prefill = raw.get("prefill")
    if prefill is not None and prefill not in PREFILL_SOURCES:
        raise CatalogueError(f"{where}: unknown prefill source {str(prefill)[:40]!r}")
    options = tuple(
        _option(o, f"{where}.options[{i}]")
        for i, o in enumerate(_list(raw.get("options"), f"{where}.options", limits.MAX_OPTIONS))
    )
    if widget == "choice" and not options:
        raise CatalogueError(f"{where}: a choice needs options")
    return Question(
        field=field,
        label=_texts(raw.get("label"), f"{where}.label"),
        help=_optional_texts(raw.get("help"), f"{where}.help"),
        widget=widget,
        prefill=prefill,
        readonly=bool(raw.get("readonly", False)),
        error=_optional_texts(raw.get("error"), f"{where}.error"),
        options=options,
        required=field in required,
    )


def _days(value: Any, where: str) -> int:
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= 10_000:
        raise CatalogueError(f"{where}: expected a number of days")
    return value


def _service(raw: Any, index: int) -> tuple[Service, Any]:
    where = f"services[{index}]"
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a service needs an id")
    service_id = _name(raw.get("id"), "a service", where)
    where = f"{where} {service_id!r}"
    form = raw.get("form")
    if not isinstance(form, dict) or form.get("type") != "object":
        raise CatalogueError(f"{where}: the form must be an object schema")
    validator = check_form(form, where)
    properties = form.get("properties") or {}
    required = frozenset(r for r in form.get("required") or () if isinstance(r, str))
    guide_raw = raw.get("guide")
    if not isinstance(guide_raw, dict):
        raise CatalogueError(f"{where}: the service guide is missing")
    guide = Guide(
        audience=_texts(guide_raw.get("audience"), f"{where}.guide.audience"),
        materials=tuple(
            _texts(m, f"{where}.guide.materials")
            for m in _list(
                guide_raw.get("materials"), f"{where}.guide.materials", limits.MAX_OPTIONS
            )
        ),
        fee=_texts(guide_raw.get("fee"), f"{where}.guide.fee"),
        time_limit=_texts(guide_raw.get("time_limit"), f"{where}.guide.time_limit"),
        time_limit_days=_days(guide_raw.get("time_limit_days"), f"{where}.guide.time_limit_days"),
        collection=_texts(guide_raw.get("collection"), f"{where}.guide.collection"),
    )
    questions = tuple(
        _question(q, f"{where}.questions[{i}]", required)
        for i, q in enumerate(
            _list(raw.get("questions"), f"{where}.questions", limits.MAX_QUESTIONS)
        )
    )
    if not questions:
        raise CatalogueError(f"{where}: the form has no questions")
    fields = [q.field for q in questions]
    if len(set(fields)) != len(fields) or set(fields) != set(properties):
        raise CatalogueError(f"{where}: questions and form properties do not match")
    service = Service(
        id=service_id,
        name=_texts(raw.get("name"), f"{where}.name"),
        summary=_optional_texts(raw.get("summary"), f"{where}.summary"),
        department=_optional_texts(raw.get("department"), f"{where}.department"),
        guide=guide,
        form=form,
        questions=questions,
    )
    return service, validator


ATTACHMENT_LIMITS_MEMBER = "attachment_limits"


def _attachment_limits(raw: Any) -> AttachmentLimits:
    """The announced limits, each a positive whole number, capped at the outbox's own."""
    if raw is None:
        return AttachmentLimits()
    where = ATTACHMENT_LIMITS_MEMBER
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: expected an object")
    own = AttachmentLimits()
    capped: dict[str, int] = {}
    for name in ("max_files", "max_file_bytes", "max_total_bytes"):
        value = raw.get(name)
        if type(value) is not int or value < 1:  # bool is an int; true is not a limit
            raise CatalogueError(f"{where}.{name}: expected a positive whole number")
        capped[name] = min(value, getattr(own, name))
    return AttachmentLimits(**capped)


TRACKING_MEMBER = "tracking"
MAX_TRACKING_URL_CHARS = 200  # its receipt's QR code carries it with a token of ~210 characters


def _tracking_url(raw: Any) -> str | None:
    """The public tracking page's address: http(s) with a host, no query or fragment (the
    receipt's token is added as ?t=), nothing but printable ASCII without spaces."""
    if raw is None:
        return None
    where = f"{TRACKING_MEMBER}.public_url"
    url = raw.get("public_url") if isinstance(raw, dict) else None
    if not isinstance(url, str) or not 0 < len(url) <= MAX_TRACKING_URL_CHARS:
        raise CatalogueError(
            f"{where}: expected an address of 1 to {MAX_TRACKING_URL_CHARS} characters"
        )
    if not all("!" <= ch <= "~" for ch in url) or "?" in url or "#" in url:
        raise CatalogueError(f"{where}: expected printable ASCII without query or fragment")
    scheme, _, rest = url.partition("://")
    if scheme not in ("https", "http") or not rest or rest.startswith("/"):
        raise CatalogueError(f"{where}: expected an http(s) address with a host")
    return url


def parse_catalogue(data: Any) -> Catalogue:
    """Check a catalogue as a whole; CatalogueError (with a detail for the log) if any part fails.

    The forms' validators are built here, so that checking answers later is quick on any thread.
    """
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise CatalogueError("the catalogue must be an object with a list of services")
    attachment_limits = _attachment_limits(data.get(ATTACHMENT_LIMITS_MEMBER))
    tracking_url = _tracking_url(data.get(TRACKING_MEMBER))
    raw_services = _list(data["services"], "services", limits.MAX_SERVICES)
    cap = limits.MAX_CATALOGUE_SCHEMA_NODES
    forms = [raw.get("form") for raw in raw_services if isinstance(raw, dict)]
    if _objects_past(forms, cap) > cap:
        raise CatalogueError(f"the forms have more than {cap} objects in all")
    built = [_service(raw, i) for i, raw in enumerate(raw_services)]
    if not built:
        raise CatalogueError("the catalogue offers no services")
    ids = [service.id for service, _ in built]
    if len(set(ids)) != len(ids):
        raise CatalogueError("two services share an id")
    version = data.get("version", "")
    if not isinstance(version, str | int) or len(str(version)) > limits.MAX_NAME_CHARS:
        raise CatalogueError("the catalogue version is not a short text")
    with _VALIDATORS_LOCK:
        for service, validator in built:
            _remember(service, validator)
    return Catalogue(
        version=str(version),
        services=tuple(service for service, _ in built),
        attachment_limits=attachment_limits,
        tracking_url=tracking_url,
    )


def read_catalogue_bytes(path: Path) -> bytes:
    """The file's bytes, refused unread past MAX_CATALOGUE_BYTES (whatever the file claims)."""
    cap = limits.MAX_CATALOGUE_BYTES
    try:
        with path.open("rb") as fh:
            # A regular file's size is known before reading; a device or pipe in its place only
            # shows how much it holds by reading, so no more than one byte past the cap is read.
            if path.is_file() and path.stat().st_size > cap:
                raise CatalogueError(f"{path.name}: larger than {cap} bytes")
            data = fh.read(cap + 1)
    except OSError as exc:
        raise CatalogueError(f"{path.name}: {type(exc).__name__}") from exc
    if len(data) > cap:
        raise CatalogueError(f"{path.name}: larger than {cap} bytes")
    return data


def catalogue_from_bytes(data: bytes, source: str) -> Catalogue:
    """Decode and check a catalogue read from `source` (a name for the log)."""
    if len(data) > limits.MAX_CATALOGUE_BYTES:
        raise CatalogueError(f"{source}: larger than {limits.MAX_CATALOGUE_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{source}: {type(exc).__name__}") from exc
    except RecursionError as exc:  # json nests by recursion: thousands of brackets end it
        raise CatalogueError(f"{source}: nested too deeply") from exc
    return parse_catalogue(value)


def load_catalogue_file(path: Path) -> Catalogue:
    return catalogue_from_bytes(read_catalogue_bytes(path), path.name)
