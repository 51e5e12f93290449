"""POST /api/v1/submissions/{submission_id}/corrections: a submission refused for its answers,
corrected by the terminal that filed it, under the same submission id and receipt number.

A submission refused with 422 validation_failed for its answers alone is kept as rejected (its
opened body and the problems named), not as a received case. The terminal that filed it may send
new values for the fields the problems named, sealed to the platform's key like a submission
(the correction id is the sealed content's associated data). The platform merges them into the
kept body and checks the whole submission again as it would a new one: valid, it is stored as the
received submission and answered as POST /submissions answers (201); still invalid, the rejected
record takes the new problems and the answer is the new 422. A correction id is answered once: a
replay gets the same answer, the same id with other content 409.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from kiosk.trust import SEAL_ALG, SealError

from .bodies import KIB, canonical_hash, loads_strictly
from .keys import PlatformKeys
from .models import SubmissionRequest
from .storage import (
    CorrectionAnswer,
    CorrectionState,
    NewSubmission,
    Outcome,
    RejectedSubmission,
    Storage,
)

logger = logging.getLogger(__name__)

# New values for a few fields of a form, sealed: room for every field of a long form, no files.
CORRECTION_BODY_BYTES = 256 * KIB
NOT_CORRECTABLE = "not_correctable"
_JSON = "application/json"
_MEMBERS = frozenset({"correction_id", "submission_id", "sealed"})
ANSWERS_PREFIX = "answers."

Run = Callable[..., Awaitable[Any]]
SignedJson = Callable[[Request, int], Awaitable[tuple[str, object]]]
ErrorAnswer = Callable[..., Response]
# The platform's own check of a submission body: the answer it gets (a refusal or what to
# store), and, for a refusal over its answers alone, the rejected record to keep.
Weigh = Callable[
    [Request, SubmissionRequest, dict[str, Any], str],
    tuple[Response | NewSubmission, RejectedSubmission | None],
]
Problems = Callable[[ValidationError], list[Any]]


class SealedEnvelope(BaseModel):
    """A body sealed to the platform's sealing key (docs/api.md, "Sealed submissions")."""

    model_config = ConfigDict(extra="forbid")

    alg: Literal["X25519-HKDF-SHA256-AES256GCM"] = Field(description=SEAL_ALG)
    key_id: StrictStr
    epk: StrictStr
    nonce: StrictStr
    ciphertext: StrictStr


class CorrectionRequest(BaseModel):
    """New values for the fields a 422 named; sealed, the content is {"answers": {...}}."""

    model_config = ConfigDict(extra="forbid")

    correction_id: Annotated[
        StrictStr, Field(description="UUIDv7 made by the terminal; the correction's key")
    ]
    submission_id: Annotated[StrictStr, Field(description="the submission corrected (the path's)")]
    sealed: SealedEnvelope = Field(
        description=(
            'sealed like a submission, associated data the correction id; inside: {"answers": '
            "{field: value, ...}}, only fields the refusal named; null removes an answer"
        )
    )


def field_of(problem_field: str) -> str:
    """The form field a problem names ("phone", or "answers.phone" in pydantic's spelling)."""
    return problem_field.removeprefix(ANSWERS_PREFIX)


def _uuid_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False


class CorrectionRoute:
    def __init__(
        self,
        *,
        signed_json: SignedJson,
        run: Run,
        storage: Storage,
        keys: PlatformKeys,
        weigh: Weigh,
        error: ErrorAnswer,
        problems: Problems,
        now: Callable[[], str],
    ) -> None:
        self._signed_json = signed_json
        self._run = run
        self._storage = storage
        self._keys = keys
        self._weigh = weigh
        self._error = error
        self._problems = problems
        self._now = now

    async def post_correction(self, submission_id: str, request: Request) -> Response:
        """New values for the fields a refusal named, from the terminal that filed the
        submission; the whole submission is checked again, and stored once it is valid."""
        try:
            terminal_id, doc = await self._signed_json(request, CORRECTION_BODY_BYTES)
        except ValueError:
            return self._error(400, "bad_request", "the body is not JSON")
        read = await self._run(self._read, doc, submission_id)
        if isinstance(read, Response):
            return read
        correction_id, answers = read
        body_hash = canonical_hash({"submission_id": submission_id, "answers": answers})
        decide = functools.partial(self._decide, request, terminal_id, answers)
        outcome, status, body = await self._run(
            self._storage.correct,
            correction_id,
            submission_id,
            terminal_id=terminal_id,
            body_hash=body_hash,
            at=self._now(),
            decide=decide,
        )
        if outcome is Outcome.CONFLICT:
            return self._error(
                409, "idempotency_conflict", "this correction id was used before with another body"
            )
        if outcome is Outcome.CREATED:
            logger.info("correction %s of %s: HTTP %d", correction_id, submission_id, status)
        return Response(content=body, status_code=status, media_type=_JSON)

    def _read(self, doc: object, submission_id: str) -> tuple[str, dict[str, Any]] | Response:
        """The correction id and the new answers, opened; or the refusal (400)."""
        if not isinstance(doc, dict) or set(doc) != _MEMBERS:
            return self._error(
                400, "bad_request", 'the body is not {"correction_id", "submission_id", "sealed"}'
            )
        correction_id = doc["correction_id"]
        if not _uuid_text(correction_id):
            return self._error(400, "bad_request", "correction_id is not a UUID")
        if doc["submission_id"] != submission_id:
            return self._error(400, "bad_request", "the body names another submission")
        envelope = doc["sealed"]
        if not isinstance(envelope, dict):
            return self._error(400, "sealed_invalid", "the sealed envelope is not an object")
        try:
            opened = self._keys.open_sealed(envelope, str(correction_id).encode("utf-8"))
            inner = loads_strictly(opened.decode("utf-8"))
        except SealError as exc:
            return self._error(400, "sealed_invalid", f"the sealed body does not open ({exc.code})")
        except (UnicodeDecodeError, ValueError):
            return self._error(400, "bad_request", "the sealed body is not JSON")
        answers = inner.get("answers") if isinstance(inner, dict) else None
        if (
            not isinstance(inner, dict)
            or set(inner) != {"answers"}
            or not isinstance(answers, dict)
        ):
            return self._error(400, "bad_request", 'the sealed body is not {"answers": {...}}')
        if not answers:
            return self._error(400, "bad_request", "the correction changes no answer")
        return str(correction_id), answers

    def _decide(  # noqa: PLR0917 - bound with functools.partial, completed by Storage.correct
        self,
        request: Request,
        terminal_id: str,
        answers: dict[str, Any],
        state: CorrectionState,
        rejected: RejectedSubmission | None,
        filed_by: str | None,
    ) -> CorrectionAnswer:
        """What the correction comes to, inside the storage's write transaction."""
        if filed_by is None:
            return self._answer(
                409, NOT_CORRECTABLE, "this submission was never refused for its answers"
            )
        if filed_by != terminal_id:
            # The case is the filing terminal's; no other may change what it says.
            return self._answer(403, "terminal_mismatch", "another terminal filed this submission")
        if state is CorrectionState.RECEIVED or rejected is None:
            return self._answer(409, NOT_CORRECTABLE, "this submission has been received")
        named = {field_of(field) for field, _ in rejected.problems}
        others = sorted(set(answers) - named)
        if others:
            body = {
                "error": NOT_CORRECTABLE,
                "detail": "only the fields the refusal named may be changed",
                "fields": [{"field": name, "code": NOT_CORRECTABLE} for name in others],
            }
            return CorrectionAnswer(422, _json_bytes(body))
        merged = copy.deepcopy(rejected.request)
        merged_answers = dict(merged.get("answers") or {})
        for name, value in answers.items():
            if value is None:
                merged_answers.pop(name, None)
            else:
                merged_answers[name] = value
        merged["answers"] = merged_answers
        try:
            envelope = SubmissionRequest.model_validate(merged)
        except ValidationError as exc:
            refusal = self._error(
                422, "validation_failed", "not a valid submission", self._problems(exc)
            )
            return CorrectionAnswer(422, bytes(refusal.body))
        checked, kept = self._weigh(request, envelope, merged, canonical_hash(merged))
        if isinstance(checked, NewSubmission):
            return CorrectionAnswer(
                checked.response_status, checked.response_body, accepted=checked
            )
        return CorrectionAnswer(checked.status_code, bytes(checked.body), rejected=kept)

    def _answer(self, status: int, code: str, detail: str) -> CorrectionAnswer:
        """A refusal that depends on where the case stands: not kept, it may change."""
        return CorrectionAnswer(status, bytes(self._error(status, code, detail).body), keep=False)


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
