"""The hall's staff list: set by the back office, fetched by the hall's terminals.

PUT /api/v1/backoffice/staff (back-office bearer token) replaces the whole list with
{"staff": [{"staff_id", "name", "pin"}]}; each PIN is hashed here with scrypt, in the encoding
kiosk/staff.py keeps and checks (kiosk.staff.hash_pin), and only the hash is stored: the PIN is
neither kept nor logged nor answered. A member already on the list may be given without "pin" to
keep the PIN hash it has. Every accepted PUT makes the list's version one higher.

GET /api/v1/staff (signed by an enrolled terminal) answers {"version", "staff": [{"staff_id",
"name", "pin_hash"}]}; the terminal merges it into its own staff list (kiosk/staff_sync.py). The
reference platform serves one hall, so every terminal enrolled with it gets the same list.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from kiosk.staff import (
    DEFAULT_COST,
    ScryptCost,
    StaffError,
    check_name,
    check_pin,
    hash_pin,
    normal_staff_id,
)
from kiosk.staff_sync import MAX_STAFF

from .backoffice import SECURITY_SCHEME_NAME
from .bodies import KIB, RawBody, read_json
from .storage import writing

logger = logging.getLogger(__name__)

STAFF_BODY_BYTES: Final = 256 * KIB  # MAX_STAFF members of a few dozen bytes each
STAFF_PATH: Final = "/api/v1/staff"
BACK_OFFICE_STAFF_PATH: Final = "/api/v1/backoffice/staff"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_list (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS staff_members (
    staff_id    TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pin_hash    TEXT NOT NULL
) WITHOUT ROWID;
"""


class StaffMemberAnswer(BaseModel):
    staff_id: str = Field(description="1-16 letters or digits, upper case")
    name: str = Field(description="as shown in the terminal's header")
    pin_hash: dict[str, Any] = Field(
        description='{"salt", "hash", "scrypt": {"n", "r", "p"}} (docs/api.md, Staff)'
    )


class StaffListAnswer(BaseModel):
    version: int = Field(description="one higher with every change; 0 before the first")
    staff: list[StaffMemberAnswer]


class StaffSetAnswer(BaseModel):
    version: int
    count: int


STAFF_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "StaffList",
    "type": "object",
    "required": ["staff"],
    "additionalProperties": False,
    "properties": {
        "staff": {
            "type": "array",
            "maxItems": MAX_STAFF,
            "items": {
                "type": "object",
                "required": ["staff_id", "name"],
                "additionalProperties": False,
                "properties": {
                    "staff_id": {"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$"},
                    "name": {"type": "string", "maxLength": 32},
                    "pin": {
                        "type": "string",
                        "pattern": "^[0-9]{6,12}$",
                        "description": "left out: the member keeps the PIN it has",
                    },
                },
            },
        }
    },
}


@dataclass(frozen=True)
class NewMember:
    staff_id: str
    name: str
    pin_hash: dict[str, Any] | None  # None: keep the one stored

    def __repr__(self) -> str:
        return f"NewMember({self.staff_id!r})"


@dataclass(frozen=True)
class Problem:
    field: str
    code: str


class MissingPins(Exception):
    """Members new to the list were given without a PIN."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("new members without a PIN")
        self.problems = problems


def read_members(doc: object, cost: ScryptCost = DEFAULT_COST) -> list[NewMember] | list[Problem]:
    """The members of a PUT body, their PINs hashed; or the problems found (nothing is hashed
    then). Problems name the field and a keyword, never a value."""
    if not isinstance(doc, dict) or set(doc) != {"staff"} or not isinstance(doc["staff"], list):
        return [Problem("", "type")]
    raw = doc["staff"]
    if len(raw) > MAX_STAFF:
        return [Problem("staff", "maxItems")]
    problems: list[Problem] = []
    checked: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"staff.{index}"
        if not isinstance(item, dict) or not {"staff_id", "name"} <= set(item) <= {
            "staff_id",
            "name",
            "pin",
        }:
            problems.append(Problem(where, "type"))
            continue
        staff_id = _checked(item["staff_id"], normal_staff_id)
        name = _checked(item["name"], check_name)
        pin = item.get("pin")
        if staff_id is None:
            problems.append(Problem(f"{where}.staff_id", "pattern"))
        elif staff_id in seen:
            problems.append(Problem(f"{where}.staff_id", "duplicate"))
        if name is None:
            problems.append(Problem(f"{where}.name", "pattern"))
        if pin is not None and not (isinstance(pin, str) and _strong(pin, staff_id or "")):
            problems.append(Problem(f"{where}.pin", "weak"))
        if staff_id is not None and name is not None:
            seen.add(staff_id)
            checked.append((staff_id, name, pin if isinstance(pin, str) else None))
    if problems:
        return problems
    return [
        NewMember(staff_id, name, hash_pin(pin, cost) if pin is not None else None)
        for staff_id, name, pin in checked
    ]


def _checked(value: object, check: Callable[[str], str]) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return check(value)
    except StaffError:
        return None


def _strong(pin: str, staff_id: str) -> bool:
    try:
        check_pin(pin, staff_id)
    except StaffError:
        return False
    return True


class StaffStore:
    """The hall's staff list in the platform's database."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            db.executescript(_SCHEMA)

    def replace(self, members: list[NewMember], now: str) -> int:
        """The list replaced by members in one transaction; its new version. MissingPins (and
        nothing changed) when a member new to the list has no PIN hash."""
        with writing(self._path) as db:
            stored = dict(db.execute("SELECT staff_id, pin_hash FROM staff_members").fetchall())
            missing = [
                Problem(f"staff.{index}.pin", "required")
                for index, member in enumerate(members)
                if member.pin_hash is None and member.staff_id not in stored
            ]
            if missing:
                raise MissingPins(missing)
            rows = [
                (
                    member.staff_id,
                    member.name,
                    json.dumps(member.pin_hash, sort_keys=True)
                    if member.pin_hash is not None
                    else stored[member.staff_id],
                )
                for member in members
            ]
            db.execute("DELETE FROM staff_members")
            db.executemany(
                "INSERT INTO staff_members (staff_id, name, pin_hash) VALUES (?, ?, ?)", rows
            )
            row = db.execute("SELECT version FROM staff_list WHERE one = 1").fetchone()
            version = (int(row[0]) if row else 0) + 1
            db.execute(
                "INSERT INTO staff_list (one, version, updated_at) VALUES (1, ?, ?)"
                " ON CONFLICT (one) DO UPDATE SET version = excluded.version,"
                " updated_at = excluded.updated_at",
                (version, now),
            )
        return version

    def current(self) -> dict[str, Any]:
        """The list as terminals get it: {"version", "staff": [...]}, by staff number."""
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            db.execute("BEGIN")  # one snapshot of the version and the members
            row = db.execute("SELECT version FROM staff_list WHERE one = 1").fetchone()
            members = db.execute(
                "SELECT staff_id, name, pin_hash FROM staff_members ORDER BY staff_id"
            ).fetchall()
        return {
            "version": int(row[0]) if row else 0,
            "staff": [
                {"staff_id": staff_id, "name": name, "pin_hash": json.loads(pin_hash)}
                for staff_id, name, pin_hash in members
            ],
        }


Run = Callable[..., Awaitable[Any]]
Signed = Callable[[Request, int], Awaitable[tuple[str, RawBody | None]]]
ErrorAnswer = Callable[[int, str, str], Response]
JsonAnswer = Callable[[int, object], Response]
Refusal = Callable[[Request], Response | None]


class StaffRoute:
    """The handlers of PUT /backoffice/staff and GET /staff (add_staff_routes wires them)."""

    def __init__(
        self,
        *,
        store: StaffStore,
        signed: Signed,
        run: Run,
        error: ErrorAnswer,
        answer: JsonAnswer,
        back_office_refusal: Refusal,
        now: Callable[[], str],
        cost: ScryptCost = DEFAULT_COST,
    ) -> None:
        self._store = store
        self._signed = signed
        self._run = run
        self._error = error
        self._answer = answer
        self._back_office_refusal = back_office_refusal
        self._now = now
        self._cost = cost

    async def put_staff(self, request: Request) -> Response:
        """Back office: the hall's staff list replaced as a whole. Only scrypt hashes of the
        PINs are kept. 200 with the list's new version; 422 naming the members' fields that
        are wrong (nothing changes then)."""
        if (refused := self._back_office_refusal(request)) is not None:
            return refused
        try:
            doc = await read_json(request, STAFF_BODY_BYTES)  # BodyTooLarge: 413 (app.py)
        except ValueError:
            return self._error(400, "bad_request", "the body is not JSON")
        # scrypt for each PIN: off the event loop.
        read = await self._run(read_members, doc, self._cost)
        if read and isinstance(read[0], Problem):
            return self._problems(read)
        try:
            version = await self._run(self._store.replace, read, self._now())
        except MissingPins as exc:
            return self._problems(exc.problems)
        logger.info("staff list version %d set: %d member(s)", version, len(read))
        return self._answer(200, {"version": version, "count": len(read)})

    def _problems(self, problems: list[Problem]) -> Response:
        return self._answer(
            422,
            {
                "error": "validation_failed",
                "detail": "some staff members are not valid",
                "fields": [{"field": p.field, "code": p.code} for p in problems],
            },
        )

    async def get_staff(self, request: Request) -> Response:
        """The hall's staff list for the terminal that signed the request: numbers, names and
        PIN hashes (never PINs)."""
        terminal_id, body = await self._signed(request, 0)
        if body is not None:
            body.close()
        current = await self._run(self._store.current)
        logger.info("staff list version %d sent to terminal %s", current["version"], terminal_id)
        return self._answer(200, current)


_JSON = "application/json"
_BACK_OFFICE: Final[dict[str, Any]] = {"security": [{SECURITY_SCHEME_NAME: []}]}
_SIGNED: Final[dict[str, Any]] = {"security": [{"terminalSignature": []}]}


def _answers(
    ok: type[BaseModel], description: str, error_model: type[BaseModel], *errors: int
) -> dict[int | str, dict[str, Any]]:
    answers: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": description}}
    answers.update({code: {"model": error_model} for code in errors})
    return answers


def add_staff_routes(app: FastAPI, staff: StaffRoute, error_model: type[BaseModel]) -> None:
    """PUT /api/v1/backoffice/staff and GET /api/v1/staff on app (error_model: the platform's
    ErrorBody, for the OpenAPI document)."""
    app.add_api_route(
        BACK_OFFICE_STAFF_PATH,
        staff.put_staff,
        methods=["PUT"],
        response_class=Response,
        responses=_answers(StaffSetAnswer, "The list is replaced", error_model, 400, 401, 413, 422),
        openapi_extra={
            "requestBody": {"required": True, "content": {_JSON: {"schema": STAFF_REQUEST_SCHEMA}}},
            **_BACK_OFFICE,
        },
        tags=["administration"],
    )
    app.add_api_route(
        STAFF_PATH,
        staff.get_staff,
        response_class=Response,
        responses=_answers(StaffListAnswer, "The hall's staff list", error_model, 401, 403),
        openapi_extra=_SIGNED,
        tags=["terminals"],
    )
