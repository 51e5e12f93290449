"""POST /api/v1/lookup: a terminal looks a citizen's cases up, by receipt number, by the submission
id of a receipt's code, or by the ID number read from their card.

Signed by an enrolled terminal like every terminal request: the ID number travels only in that
request's body, over the terminal's TLS channel, and is never logged. The answer lists the cases
found, filed at any terminal, newest first, at most MAX_CASES, each with its status history as
GET /submissions/{id} gives it, and whether the asking terminal filed it (only that terminal may
send its rating).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import Response

from devices.identity import is_valid_id_number

from .bodies import KIB
from .storage import Storage

logger = logging.getLogger(__name__)

LOOKUP_PATH = "/api/v1/lookup"
LOOKUP_BODY_BYTES = 1 * KIB
MAX_CASES = 20
_JSON = "application/json"

Run = Callable[..., Awaitable[Any]]
SignedJson = Callable[[Request, int], Awaitable[tuple[str, object]]]
ErrorAnswer = Callable[..., Response]
JsonAnswer = Callable[[int, object], Response]
Problems = Callable[[ValidationError], list[Any]]


_SELECT = "SELECT submission_id, json_extract(request_json, '$.terminal_id') FROM submissions s"
# Within one second, the order they were received in (the first history entry's sequence).
_NEWEST_FIRST = (
    " ORDER BY received_at DESC,"
    " (SELECT min(seq) FROM history h WHERE h.submission_id = s.submission_id) DESC LIMIT ?"
)
_BY_RECEIPT = _SELECT + " WHERE receipt_number = ?" + _NEWEST_FIRST
_BY_SUBMISSION = _SELECT + " WHERE submission_id = ?" + _NEWEST_FIRST
_HOLDER = "upper(json_extract(request_json, '$.applicant.id_number'))"
_BY_ID_NUMBER = _SELECT + " WHERE " + _HOLDER + " = ?" + _NEWEST_FIRST


class LookupRequest(BaseModel):
    """Exactly one way to find cases."""

    model_config = ConfigDict(extra="forbid")

    receipt_number: Annotated[
        StrictStr | None,
        Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Z0-9-]+$"),
    ] = None
    submission_id: Annotated[
        StrictStr | None, Field(default=None, min_length=1, max_length=64)
    ] = None
    id_number: Annotated[StrictStr | None, Field(default=None, min_length=18, max_length=18)] = (
        None
    )

    @model_validator(mode="after")
    def _one_way(self) -> LookupRequest:
        given = [v for v in (self.receipt_number, self.submission_id, self.id_number) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of receipt_number, submission_id, id_number")
        if self.id_number is not None and not is_valid_id_number(self.id_number):
            raise ValueError("not a valid ID number")
        return self


class LookupCase(BaseModel):
    submission_id: str
    receipt_number: str
    service_id: str
    status: str
    received_at: str
    history: list[dict[str, Any]]
    filed_here: bool = Field(description="filed by the terminal asking (it may send the rating)")


class LookupAnswer(BaseModel):
    cases: list[LookupCase] = Field(description="newest first, at most 20")


def find_cases(storage: Storage, request: LookupRequest, terminal_id: str) -> dict[str, Any]:
    """The answer to a lookup (runs on a database thread)."""
    if request.receipt_number:
        query, value = _BY_RECEIPT, request.receipt_number
    elif request.submission_id:
        query, value = _BY_SUBMISSION, request.submission_id
    else:
        query, value = _BY_ID_NUMBER, (request.id_number or "").upper()
    uri = f"{storage.path.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30.0)) as db:
        rows = db.execute(query, (value, MAX_CASES)).fetchall()
    cases = []
    for submission_id, filed_by in rows:
        record = storage.submission(str(submission_id))
        if record is None:
            continue
        cases.append(
            {
                "submission_id": record.submission_id,
                "receipt_number": record.receipt_number,
                "service_id": record.service_id,
                "status": record.status,
                "received_at": record.received_at,
                "history": [
                    {"status": e.status, "at": e.at, "note": e.note} for e in record.history
                ],
                "filed_here": filed_by == terminal_id,
            }
        )
    return {"cases": cases}


class LookupRoute:
    def __init__(
        self,
        *,
        signed_json: SignedJson,
        run: Run,
        storage: Storage,
        error: ErrorAnswer,
        answer: JsonAnswer,
        problems: Problems,
    ) -> None:
        self._signed_json = signed_json
        self._run = run
        self._storage = storage
        self._error = error
        self._answer = answer
        self._problems = problems

    async def post_lookup(self, request: Request) -> Response:
        """A citizen's cases, by receipt number, submission id or ID number (signed)."""
        try:
            terminal_id, doc = await self._signed_json(request, LOOKUP_BODY_BYTES)
            lookup = LookupRequest.model_validate(doc)
        except ValidationError as exc:
            return self._error(
                422, "validation_failed", "not a valid lookup", fields=self._problems(exc)
            )
        except ValueError:
            return self._error(400, "bad_request", "the body is not JSON")
        found = await self._run(find_cases, self._storage, lookup, terminal_id)
        way = "card" if lookup.id_number else "receipt"
        count = len(found["cases"])
        logger.info("lookup by %s from terminal %s: %d case(s)", way, terminal_id, count)
        return self._answer(200, found)


def add_lookup_route(
    app: FastAPI, route: LookupRoute, error_model: type[BaseModel], signed: dict[str, Any]
) -> None:
    """POST /api/v1/lookup on app (error_model: the platform's ErrorBody; signed: the OpenAPI
    security requirement of terminal routes)."""
    error = {"model": error_model}
    app.add_api_route(
        LOOKUP_PATH,
        route.post_lookup,
        methods=["POST"],
        response_class=Response,
        responses={
            200: {"model": LookupAnswer, "description": "The cases found, newest first"},
            400: error,
            401: error,
            413: error,
            422: error,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": LookupRequest.model_json_schema()}},
            },
            **signed,
        },
        tags=["terminals"],
    )
