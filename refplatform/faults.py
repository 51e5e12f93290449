"""Fault injection: a plan of misbehaviour for submission requests, off unless asked for.

A platform only misbehaves when create_app gets a FaultPlan: start_in_thread(faults=plan) in a
test, or `python -m refplatform --enable-faults`, which adds the admin switch
`PUT/GET/DELETE /api/v1/_faults`. Without a plan the switch does not exist (404) and submissions
are handled as the API says.

Every submission handler asks `await faults.before_submission(request)` before it reads the body;
a rule may be limited to some submission ids, taken from the Idempotency-Key header, from a
batch's body, or passed in by the handler. A rule that applies
answers in the handler's place (5xx, 409, 422, a captive portal's page, bodies that are not what
they claim), holds the request past the client's timeout and then handles it, or drops the TCP
connection without a byte of an answer, before the submission is stored or after it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol

from fastapi import FastAPI
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .models import keyword_of

logger = logging.getLogger(__name__)

FAULTS_PATH = "/api/v1/_faults"
DEFAULT_RETRY_AFTER_S = 30
DEFAULT_DELAY_S = 15.0  # past the client's default read timeout of 10 s
MAX_DELAY_S = 300.0
# How long a dropped request waits for the server to notice the closed connection; uvicorn
# does so on its next loop turn.
_DISCONNECT_WAIT_S = 5.0
_EXTENSION = "refplatform.connection"
_JSON = "application/json"
# JSON Schema keywords for the pydantic errors a plan can have beyond those models.keyword_of knows
_PLAN_ERROR_KEYWORDS = {
    "greater_than": "exclusiveMinimum",
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "missing_argument": "required",
    "unexpected_keyword_argument": "additionalProperties",
}

CAPTIVE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Free Wi-Fi</title></head><body>"
    b"<h1>Welcome</h1><form action='/login'><button>Sign in</button></form></body></html>"
)
BAD_GATEWAY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center></body></html>"
)


class SubmissionFaults(Protocol):
    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        """A response to send instead of handling the submission, or None to handle it.

        submission_ids are the ids the request carries; None means the Idempotency-Key header.
        """
        ...


class NoFaults:
    """The default: every submission is handled as the API says."""

    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        return None


class Fault(enum.StrEnum):
    HTTP_500 = "http_500"  # the platform's own error body
    HTTP_502 = "http_502"  # a gateway's HTML page
    HTTP_503 = "http_503"  # with Retry-After (retry_after_s, 30 s unless given)
    DELAY = "delay"  # wait delay_s, then handle (and store) as usual
    DROP_BEFORE_STORE = "drop_before_store"  # close the connection, nothing stored
    DROP_AFTER_STORE = "drop_after_store"  # store, then close instead of answering
    CONFLICT = "conflict"  # 409 idempotency_conflict
    VALIDATION = "validation"  # 422 validation_failed (phone: pattern)
    CAPTIVE_PORTAL = "captive_portal"  # 200 text/html login page
    INVALID_JSON = "invalid_json"  # 201 application/json, cut off mid-body
    OTHER_ID = "other_id"  # 201 receipt naming another submission


@dataclass(frozen=True)
class FaultRule:
    """One fault for the next `count` matching requests (None: until the plan changes).

    submission_ids limits the rule to requests carrying one of these ids.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    fault: Fault
    count: Annotated[int, Field(ge=1)] | None = 1
    submission_ids: frozenset[str] | None = None
    retry_after_s: Annotated[int, Field(ge=0)] | None = None
    delay_s: Annotated[float, Field(gt=0, le=MAX_DELAY_S)] = DEFAULT_DELAY_S

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            raise ValueError("retry_after_s must not be negative")
        if not 0 < self.delay_s <= MAX_DELAY_S:
            raise ValueError(f"delay_s must be in (0, {MAX_DELAY_S}]")

    def matches(self, submission_ids: Collection[str]) -> bool:
        return self.submission_ids is None or not self.submission_ids.isdisjoint(submission_ids)


class FaultPlan:
    """Rules tried in order for each submission request; thread-safe, switchable while serving.

    The first rule that matches applies and uses up one of its count; a used-up rule leaves the
    plan, and with no rule left every request is handled normally.
    """

    def __init__(self, *rules: FaultRule) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules)
        self._applied: Counter[Fault] = Counter()

    def set(self, *rules: FaultRule) -> None:
        """Replace the plan (no rules: switch every fault off)."""
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set()

    def rules(self) -> tuple[FaultRule, ...]:
        """The rules still armed; count is what is left of each."""
        with self._lock:
            return tuple(self._rules)

    def applied(self, fault: Fault | None = None) -> int:
        """How many requests a fault (any fault: None) has been applied to so far."""
        with self._lock:
            return self._applied[fault] if fault is not None else self._applied.total()

    def take(self, submission_ids: Collection[str]) -> FaultRule | None:
        """The rule for a request carrying these ids, counted as applied; None: handle it."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(submission_ids):
                    continue
                if rule.count is not None and rule.count > 1:
                    self._rules[index] = dataclasses.replace(rule, count=rule.count - 1)
                elif rule.count is not None:
                    del self._rules[index]
                self._applied[rule.fault] += 1
                return rule
        return None

    def snapshot(self) -> dict[str, Any]:
        """The plan as the admin switch shows it."""
        with self._lock:
            rules, applied = list(self._rules), dict(self._applied)
        return {
            "rules": _RULES.dump_python(rules, mode="json"),
            "applied": {fault.value: applied.get(fault, 0) for fault in Fault},
        }

    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        if not self.rules():
            return None  # switched off: not even the body is looked at
        if submission_ids is None:
            submission_ids = await _request_ids(request)
        ids = tuple(submission_ids)
        rule = self.take(ids)
        if rule is None:
            return None
        named = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        logger.warning("fault %s injected for submission(s) %s", rule.fault.value, named or "-")
        return await _inject(rule, request, ids)

    def __repr__(self) -> str:
        return f"FaultPlan({', '.join(repr(r) for r in self.rules())})"


_RULES = TypeAdapter(list[FaultRule])


async def _request_ids(request: Request) -> tuple[str, ...]:
    key = request.headers.get("Idempotency-Key")
    if key:
        return (key,)
    # A batch names its submissions in its body, {"submissions": [...]} (docs/api.md). The body
    # stays cached on the request for the handler.
    try:
        doc = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ()
    items = doc.get("submissions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(
        item["submission_id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("submission_id"), str)
    )


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status_code: int, code: str, detail: str, **extra: object) -> Response:
    body = {"error": code, "detail": detail, **extra}
    return Response(_json_bytes(body), status_code=status_code, media_type=_JSON)


async def _inject(rule: FaultRule, request: Request, ids: Sequence[str]) -> Response | None:
    retry_after = rule.retry_after_s
    response: Response
    match rule.fault:
        case Fault.HTTP_500:
            response = _error(500, "internal_error", "the platform failed to handle the request")
        case Fault.HTTP_502:
            response = Response(BAD_GATEWAY_PAGE, status_code=502, media_type="text/html")
        case Fault.HTTP_503:
            response = _error(503, "unavailable", "the platform is busy; try again later")
            retry_after = DEFAULT_RETRY_AFTER_S if retry_after is None else retry_after
        case Fault.DELAY:
            # Read the body while the client still waits for it: once it has given up, the
            # server can no longer hand the body to the handler.
            await request.body()
            await asyncio.sleep(rule.delay_s)
            return None
        case Fault.DROP_BEFORE_STORE:
            _connection_of(request).drop_answer()
            return Response(status_code=500)  # never sent: the connection closes instead
        case Fault.DROP_AFTER_STORE:
            _connection_of(request).drop_answer()
            return None
        case Fault.CONFLICT:
            response = _error(
                409, "idempotency_conflict", "this key was used before with another body"
            )
        case Fault.VALIDATION:
            response = _error(
                422,
                "validation_failed",
                "some answers are not valid",
                fields=[{"field": "phone", "code": "pattern"}],
            )
        case Fault.CAPTIVE_PORTAL:
            response = Response(CAPTIVE_PAGE, status_code=200, media_type="text/html")
        case Fault.INVALID_JSON:
            # Cut off mid-body: the id is there, the JSON is not.
            cut = _json_bytes({"submission_id": ids[0] if ids else "", "status": "received"})[:-9]
            response = Response(cut, status_code=201, media_type=_JSON)
        case Fault.OTHER_ID:
            response = Response(
                _json_bytes({"submission_id": str(uuid.uuid4()), "status": "received"}),
                status_code=201,
                media_type=_JSON,
            )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


# -- dropping connections -----------------------------------------------------------------------


class _Connection:
    """Lets a handler close its request's TCP connection instead of answering."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.drop_requested = False
        self._dropped = False

    def drop_answer(self) -> None:
        """Whatever the handler answers, close the connection instead of sending it."""
        self.drop_requested = True

    async def drop(self) -> None:
        if self._dropped:
            return
        self._dropped = True
        transport = _transport_of(self._receive)
        if transport is None:
            raise RuntimeError("this server does not let the platform drop a connection")
        transport.abort()
        # The server must see the connection gone before the request ends, or it answers
        # the request it thinks was left without a response (with a 500).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DISCONNECT_WAIT_S):
                while (await self._receive())["type"] != "http.disconnect":
                    pass


def _transport_of(receive: Receive) -> asyncio.WriteTransport | None:
    # ASGI offers no way to close a connection without an answer. Uvicorn's receive callable
    # is a method of its request cycle, which holds the connection's transport; the middleware
    # below sits inside the application, where receive still comes straight from the server.
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.WriteTransport) else None


def _connection_of(request: Request) -> _Connection:
    connection = request.scope.get("extensions", {}).get(_EXTENSION)
    if not isinstance(connection, _Connection):
        raise RuntimeError("dropping connections needs install_fault_switch on the application")
    return connection


class _ConnectionDrops:
    """ASGI middleware: a request whose handler asked for a drop ends with the connection
    closed and not one byte of its answer sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = _Connection(receive)
        extensions = {**(scope.get("extensions") or {}), _EXTENSION: connection}

        async def guarded_send(message: Message) -> None:
            if connection.drop_requested:
                await connection.drop()
                return
            await send(message)

        await self.app({**scope, "extensions": extensions}, receive, guarded_send)
        if connection.drop_requested:
            await connection.drop()


# -- the admin switch -----------------------------------------------------------------------------


class _Switch:
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    async def show(self) -> Response:
        """The rules still armed and how often each fault was applied."""
        return Response(_json_bytes(self.plan.snapshot()), media_type=_JSON)

    async def replace(self, request: Request) -> Response:
        """Replace the plan with {"rules": [...]}; an empty list switches every fault off."""
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _error(400, "bad_request", "the body is not JSON")
        if not isinstance(body, dict) or set(body) != {"rules"}:
            return _error(400, "bad_request", 'the body must be {"rules": [...]}')
        try:
            rules = _RULES.validate_python(body["rules"])
        except ValidationError as exc:
            fields = sorted(
                {
                    (".".join(str(p) for p in err["loc"]), _plan_keyword(err["type"]))
                    for err in exc.errors(include_url=False, include_input=False)
                }
            )
            return _error(
                422,
                "validation_failed",
                "not a valid fault plan",
                fields=[{"field": f, "code": c} for f, c in fields],
            )
        self.plan.set(*rules)
        logger.warning("fault plan replaced: %d rule(s)", len(rules))
        return await self.show()

    async def clear(self) -> Response:
        """Switch every fault off."""
        self.plan.clear()
        return await self.show()


def _plan_keyword(pydantic_error_type: str) -> str:
    return _PLAN_ERROR_KEYWORDS.get(pydantic_error_type) or keyword_of(pydantic_error_type)


def install_fault_switch(app: FastAPI, faults: SubmissionFaults) -> None:
    """Give an application built with a FaultPlan its admin switch and its connection drops.

    Nothing happens for any other faults object: the switch then answers 404 like any unknown
    path, and no request pays for the middleware. The switch stays out of the OpenAPI document.
    """
    if not isinstance(faults, FaultPlan):
        return
    app.add_middleware(_ConnectionDrops)
    switch = _Switch(faults)
    for method, endpoint in (
        ("GET", switch.show),
        ("PUT", switch.replace),
        ("DELETE", switch.clear),
    ):
        app.add_api_route(
            FAULTS_PATH,
            endpoint,
            methods=[method],
            response_class=Response,
            include_in_schema=False,
            tags=["administration"],
        )
