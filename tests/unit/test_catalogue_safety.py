"""A catalogue from the network cannot make the terminal fetch anything, hang on a pattern or run
out of memory: what it cannot check safely is refused with a detail naming the service and field,
and the last good catalogue stays in use."""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import kiosk.catalogue
from kiosk.catalogue import CatalogueError, Service, load_catalogue_file, parse_catalogue
from kiosk.catalogue_store import CatalogueStore
from kiosk.forms import validate, validate_field, validator_for
from kiosk.limits import (
    MAX_ANSWER_CHARS,
    MAX_CATALOGUE_BYTES,
    MAX_CATALOGUE_SCHEMA_NODES,
    MAX_PATTERN_CHARS,
    MAX_QUESTIONS,
    MAX_SCHEMA_ARRAY,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    MAX_SERVICES,
)
from tests.fixtures.badpeer import LoopbackServer
from tests.unit.test_forms_and_catalogue import CATALOGUE

HOSTILE = "^(a+)+$"  # catastrophic backtracking in Python's re
# Generous bound for one validation on a slow machine; the figures measured are far below it.
FAST_S = 0.5


class Recorder:
    """An HTTP server on 127.0.0.1 that serves a harmless schema at any path and records every
    request: a form that could make the terminal fetch a schema would reach it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                body = json.dumps({"$id": f"{recorder.base}{self.path}", "type": "string"})
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self._http = LoopbackServer(Handler)

    @property
    def base(self) -> str:
        return self._http.base_url

    def stop(self) -> None:
        self._http.stop()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return data


def _with_field(schema: dict[str, Any], *, field: str = "code", form: Any = None) -> dict[str, Any]:
    """The demo catalogue with one more text question on the first service."""
    data = _demo()
    service = data["services"][0]
    service["form"]["properties"][field] = schema
    service["questions"].append({"field": field, "label": {"zh_CN": "代码", "en": "Code"}})
    if form is not None:
        form(service["form"])
    return data


def _refused(data: Any) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data)
    assert "服务" in caught.value.user_message()  # a message for people, in zh_CN
    return caught.value


def _service_with(schema: dict[str, Any]) -> Service:
    return parse_catalogue(_with_field(schema)).service("residence-permit")


# -- no network ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trick",
    [
        "ref",
        "ref_in_defs",
        "dynamic_ref",
        "schema_at_top",
        "schema_in_field",
        "relative_ref_under_remote_id",
        "ref_to_metaschema",
    ],
)
def test_a_form_that_points_outside_itself_is_refused_and_nothing_is_fetched(
    recorder: Recorder, trick: str
) -> None:
    remote = f"{recorder.base}/schemas/code.json"
    schemas: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], None] | None]] = {
        "ref": ({"$ref": remote}, None),
        "ref_in_defs": (
            {"$ref": "#/$defs/code"},
            lambda form: form.update({"$defs": {"code": {"$ref": remote}}}),
        ),
        "dynamic_ref": ({"$dynamicRef": f"{remote}#meta"}, None),
        "schema_at_top": (
            {"type": "string"},
            lambda form: form.update({"$schema": f"{recorder.base}/meta"}),
        ),
        "schema_in_field": ({"$schema": f"{recorder.base}/meta", "type": "string"}, None),
        "relative_ref_under_remote_id": (
            {"$ref": "code.json"},
            lambda form: form.update({"$id": f"{recorder.base}/schemas/form.json"}),
        ),
        "ref_to_metaschema": ({"$ref": "https://json-schema.org/draft/2020-12/schema"}, None),
    }
    schema, change = schemas[trick]
    error = _refused(_with_field(schema, form=change))
    assert "residence-permit" in error.detail
    if trick != "schema_at_top":
        assert "'code'" in error.detail  # the field
    assert recorder.paths == []


def test_the_validator_itself_cannot_fetch(recorder: Recorder) -> None:
    # Even a schema that never went through the catalogue checks only sees an empty registry.
    validator = validator_for(_service_with({"type": "string"}))
    remote = validator.evolve(schema={"$ref": f"{recorder.base}/schemas/code.json"})
    with pytest.raises(Exception, match="Unresolvable"):
        list(remote.iter_errors("abc"))
    assert recorder.paths == []


def test_references_inside_the_form_still_work() -> None:
    service = parse_catalogue(
        _with_field(
            {"$ref": "#/$defs/code"},
            form=lambda form: form.update(
                {"$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
            ),
        )
    ).service("residence-permit")
    assert validate_field(service, "code", {"code": "ABC"}) is None
    error = validate_field(service, "code", {"code": "abc"})
    assert error is not None and error.code == "pattern"


@pytest.mark.parametrize(
    ("defs", "why"),
    [
        ({"a": {"$ref": "#/$defs/a"}}, "loop"),
        ({"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}}, "loop"),
        # Each level uses the next twice: 2**20 schema objects once followed, from 60 written.
        (
            {
                f"l{i}": {"allOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]}
                for i in range(20)
            }
            | {"l20": {"type": "string"}},
            "more than",
        ),
        # A chain of references deeper than the nesting cap.
        (
            {f"c{i}": {"$ref": f"#/$defs/c{i + 1}"} for i in range(200)} | {"c200": {}},
            "deep",
        ),
    ],
    ids=["self", "cycle", "expansion", "chain"],
)
def test_references_that_loop_or_multiply_are_refused(defs: dict[str, Any], why: str) -> None:
    start = next(iter(defs))
    data = _with_field({"$ref": f"#/$defs/{start}"}, form=lambda form: form.update({"$defs": defs}))
    assert why in _refused(data).detail


def test_a_reference_into_a_place_the_metaschema_does_not_cover_is_checked_too() -> None:
    # check_schema looks at subschema positions only; a pointer can lead anywhere in the form.
    def extra(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
        return lambda form: form.update({"x-extra": {"code": schema}})

    broken = _with_field({"$ref": "#/x-extra/code"}, form=extra({"type": "telephone"}))
    assert "invalid form schema" in _refused(broken).detail
    fine = _with_field({"$ref": "#/x-extra/code"}, form=extra({"type": "string", "maxLength": 3}))
    service = parse_catalogue(fine).service("residence-permit")
    error = validate_field(service, "code", {"code": "abcd"})
    assert error is not None and error.code == "maxLength"


# -- patterns --------------------------------------------------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def test_a_backtracking_pattern_runs_in_linear_time() -> None:
    service = _service_with({"type": "string", "pattern": HOSTILE})
    hostile = "a" * 26 + "!"  # 27 characters: about 4 s with Python's re
    assert len(hostile) == 27
    error, took = _timed(lambda: validate_field(service, "code", {"code": hostile}))
    assert error is not None and error.code == "pattern"
    assert took < FAST_S
    assert validate_field(service, "code", {"code": "a" * 27}) is None


def test_a_hostile_answer_of_100k_characters_is_refused_quickly() -> None:
    service = _service_with({"type": "string", "pattern": HOSTILE})
    hostile = "a" * 100_000 + "!"
    error, took = _timed(lambda: validate_field(service, "code", {"code": hostile}))
    assert error is not None and error.code == "maxLength"
    assert str(MAX_ANSWER_CHARS) in error.message
    assert took < FAST_S
    # The pattern engine itself, past the answer cap: still linear.
    validator = validator_for(service)
    errors, took = _timed(lambda: [e.validator for e in validator.iter_errors({"code": hostile})])
    assert "pattern" in errors
    assert took < FAST_S
    matching, took = _timed(lambda: list(validator.iter_errors({"code": "a" * 100_000})))
    assert not [e for e in matching if e.validator == "pattern"]
    assert took < FAST_S


@pytest.mark.parametrize(
    "where",
    ["pattern", "pattern_properties"],
)
@pytest.mark.parametrize(
    "pattern",
    [r"^(a)\1$", r"^(?=a)a$", r"(?<!x)a", r"(?<=x)a", "a" * (MAX_PATTERN_CHARS + 1)],
    ids=["backreference", "lookahead", "negative-lookbehind", "lookbehind", "too-long"],
)
def test_a_pattern_re2_cannot_run_refuses_the_catalogue(where: str, pattern: str) -> None:
    if where == "pattern":
        data = _with_field({"type": "string", "pattern": pattern})
    else:
        data = _with_field({"type": "object", "patternProperties": {pattern: {}}})
    detail = _refused(data).detail
    assert "residence-permit" in detail and "'code'" in detail and "pattern" in detail


def test_pattern_properties_keys_run_on_re2() -> None:
    # A field named to make the hostile key backtrack; checked in linear time all the same.
    field = "a" * 26 + "!"
    data = _with_field(
        {"type": "string"},
        field=field,
        form=lambda form: form.update(
            {"patternProperties": {HOSTILE: {"type": "integer"}}, "additionalProperties": False}
        ),
    )
    service = parse_catalogue(data).service("residence-permit")
    error, took = _timed(lambda: validate_field(service, field, {field: "x"}))
    assert error is None
    assert took < FAST_S


def test_the_regex_format_runs_on_re2() -> None:
    service = _service_with({"type": "string", "format": "regex"})
    assert validate_field(service, "code", {"code": "^[a-z]+$"}) is None
    error = validate_field(service, "code", {"code": r"(a)\1"})
    assert error is not None and error.code == "format"


def test_a_subschema_cannot_switch_back_to_pythons_re() -> None:
    # jsonschema picks the class named by a subschema's $schema: its `pattern` runs on re.
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "string",
        "pattern": HOSTILE,
    }
    assert "$schema" in _refused(_with_field(schema)).detail


# -- caps --------------------------------------------------------------------------------------


def _with_objects(service: dict[str, Any], service_id: str, objects: int) -> dict[str, Any]:
    """A copy of the service under another id, its form padded to about `objects` objects."""
    copied = copy.deepcopy(service)
    copied["id"] = service_id
    copied["form"]["properties"]["name"]["allOf"] = [
        {"allOf": [{} for _ in range(49)]} for _ in range(objects // 50)
    ]
    return copied


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"allOf": [schema]}
    return schema


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda d: d["services"][0]["form"]["properties"].update(deep=_nested(40)), "deep"),
        (lambda d: d["services"][0]["form"]["properties"].update(deep=_nested(5000)), "deep"),
        (
            lambda d: d["services"].extend(
                dict(copy.deepcopy(d["services"][0]), id=f"s{i}") for i in range(MAX_SERVICES)
            ),
            str(MAX_SERVICES),
        ),
        (
            lambda d: d["services"][0]["questions"].extend(
                [d["services"][0]["questions"][0]] * MAX_QUESTIONS
            ),
            str(MAX_QUESTIONS),
        ),
        (
            lambda d: d["services"][0]["form"].update(unevaluatedProperties=False),
            "unevaluatedProperties",
        ),
        (
            lambda d: d["services"][0]["form"]["properties"]["name"].update(
                allOf=[{}] * MAX_SCHEMA_NODES
            ),
            str(MAX_SCHEMA_NODES),
        ),
        (
            lambda d: d["services"].extend(
                _with_objects(d["services"][0], f"s{i}", MAX_SCHEMA_NODES - 50)
                for i in range(MAX_CATALOGUE_SCHEMA_NODES // (MAX_SCHEMA_NODES - 50) + 1)
            ),
            "in all",
        ),
        (
            lambda d: d["services"][0]["form"]["properties"]["name"].update(
                enum=[str(i) for i in range(MAX_SCHEMA_ARRAY + 1)]
            ),
            str(MAX_SCHEMA_ARRAY),
        ),
        (lambda d: d["services"][0]["name"].update(en="x" * 100_000), "longer"),
        (lambda d: d["services"][0].update(id="s" * 1000), "longer"),
        (lambda d: d["services"][0]["guide"].update(time_limit_days="ten"), "days"),
    ],
    ids=[
        "depth",
        "depth-5000",
        "services",
        "questions",
        "unevaluated",
        "objects-in-a-form",
        "objects-in-all-forms",
        "long-enum",
        "long-text",
        "long-id",
        "days-not-a-number",
    ],
)
def test_a_catalogue_past_a_cap_is_refused(damage: Callable[[Any], None], said: str) -> None:
    data = _demo()
    damage(data)
    assert said in _refused(data).detail


def test_a_long_answer_is_refused_even_when_the_schema_sets_no_limit() -> None:
    service = _service_with({"type": "string"})
    assert validate_field(service, "code", {"code": "x" * MAX_ANSWER_CHARS}) is None
    error = validate_field(service, "code", {"code": "x" * (MAX_ANSWER_CHARS + 1)})
    assert error is not None and error.code == "maxLength"
    assert str(MAX_ANSWER_CHARS) in error.message
    nested = validate_field(service, "code", {"code": [["x"] * MAX_ANSWER_CHARS]})
    assert nested is not None and nested.code == "maxLength"


def test_the_schemas_own_smaller_limit_is_the_one_shown() -> None:
    service = _service_with({"type": "string", "maxLength": 40})
    error = validate_field(service, "code", {"code": "x" * (MAX_ANSWER_CHARS + 1)})
    assert error is not None and error.code == "maxLength"
    assert "40" in error.message


@pytest.mark.parametrize("answer", ["9" * 2000, "nan", "inf", 10**400, float("nan")])
def test_numbers_no_form_asks_for_are_refused_not_crashed_on(answer: object) -> None:
    service = _service_with({"type": "number", "multipleOf": 0.5, "maximum": 100})
    error = validate_field(service, "code", {"code": answer})
    assert error is not None and error.code == "type"


def test_a_catalogue_file_past_the_cap_is_refused_unparsed(tmp_path: Path) -> None:
    data = _demo()
    data["padding"] = "x" * MAX_CATALOGUE_BYTES
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue_file(path)
    assert "larger than" in caught.value.detail


def test_a_catalogue_file_nested_without_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text('{"services": ' + "[" * 200_000, encoding="utf-8")
    with pytest.raises(CatalogueError):
        load_catalogue_file(path)


# -- the last good catalogue stays -----------------------------------------------------------------


class Source:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get_catalogue(self) -> dict[str, Any]:
        return self.data


def _hostile_catalogues() -> dict[str, dict[str, Any]]:
    many = _demo()
    many["services"] += [
        dict(copy.deepcopy(many["services"][0]), id=f"s{i}") for i in range(MAX_SERVICES)
    ]
    big = _demo()
    big["padding"] = "x" * MAX_CATALOGUE_BYTES
    return {
        "remote-ref": _with_field({"$ref": "http://127.0.0.1:9/code.json"}),
        "backreference": _with_field({"type": "string", "pattern": r"^(a)\1$"}),
        "nested-schema-dialect": _with_field(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "pattern": HOSTILE}
        ),
        "reference-loop": _with_field(
            {"$ref": "#/$defs/a"},
            form=lambda form: form.update({"$defs": {"a": {"$ref": "#/$defs/a"}}}),
        ),
        "too-deep": _with_field(_nested(MAX_SCHEMA_DEPTH + 1)),
        "too-many-services": many,
        "too-big-to-store": big,
    }


@pytest.mark.parametrize("kind", sorted(_hostile_catalogues()))
def test_a_refused_catalogue_never_replaces_the_last_good_one(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "catalogue.json"
    store = CatalogueStore(cache, None)
    good = _demo()
    good["version"] = "good"
    store.refresh(Source(good))
    kept = cache.read_bytes()
    with pytest.raises(CatalogueError):
        store.refresh(Source(_hostile_catalogues()[kind]))
    assert cache.read_bytes() == kept
    assert store.load_local().version == "good"
    assert "refused" in caplog.text  # the reason reaches the log, not only the exception type


def test_the_stored_copy_loads_again_at_the_cap(tmp_path: Path) -> None:
    # Stored compactly, so a catalogue taken from the platform is never one the next start refuses.
    data = _demo()
    data["padding"] = ""
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    data["padding"] = "x" * (MAX_CATALOGUE_BYTES - size)
    store = CatalogueStore(tmp_path / "catalogue.json", None)
    store.refresh(Source(data))
    assert (tmp_path / "catalogue.json").stat().st_size == MAX_CATALOGUE_BYTES
    assert store.load_local().version == data["version"]


# -- validators: built once, shared between threads ------------------------------------------------


def test_validators_are_built_while_parsing_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = kiosk.catalogue.check_form

    def counting(form: Any, where: str) -> Any:
        built.append(where)
        return real(form, where)

    monkeypatch.setattr(kiosk.catalogue, "check_form", counting)
    catalogue = parse_catalogue(_demo())
    assert len(built) == len(catalogue.services)
    service = catalogue.service("residence-permit")
    first = validator_for(service)
    for _ in range(50):
        validate(service, {"phone": "12345"})
        assert validator_for(service) is first
    assert len(built) == len(catalogue.services)


def test_validation_from_many_threads_at_once_agrees_with_one() -> None:
    catalogue = parse_catalogue(_with_field({"type": "string", "pattern": HOSTILE}))
    service = catalogue.service("residence-permit")
    answers = {"phone": "12345", "address": "短", "code": "a" * 26 + "!"}
    expected = validate(service, answers)
    # A Service never seen before: threads race to build its validator and must share one.
    fresh = dataclasses.replace(service)
    assert fresh is not service
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def work(i: int) -> None:
        barrier.wait(timeout=10)
        results[i] = (validator_for(fresh), [validate(fresh, answers) for _ in range(20)])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not any(worker.is_alive() for worker in workers)
    assert len({id(validator) for validator, _ in results}) == 1
    for _validator, runs in results:
        assert all(run == expected for run in runs)
