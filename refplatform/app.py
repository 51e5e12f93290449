"""The FastAPI application of API v1: catalogue, submissions, status, rating and tracking."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Header
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from kiosk.terminal_auth import ca_fingerprint
from kiosk.trust import SealError

from . import models
from .audit import AUDIT_REQUEST_SCHEMA, AuditAnswer, AuditRoute, AuditStore
from .backoffice import (
    CHALLENGE,
    CHALLENGE_INVALID,
    SECURITY_SCHEME,
    SECURITY_SCHEME_NAME,
    BackOffice,
    new_token,
)
from .bodies import (
    BATCH_BODY_BYTES,
    ENROL_BODY_BYTES,
    HELP_BODY_BYTES,
    RATING_BODY_BYTES,
    STATUS_BODY_BYTES,
    SUBMISSION_BODY_BYTES,
    BodyTooLarge,
    RawBody,
    canonical_hash,
    decode_base64,
    loads_strictly,
    parse_json,
    read_capped,
    read_json,
)
from .bundles import BUNDLE_REQUEST_SCHEMA, BundleAnswer, BundleRoute
from .catalogue import Catalogue, FieldProblem, ServedCatalogue
from .corrections import CorrectionRequest, CorrectionRoute
from .faults import NoFaults, SubmissionFaults, install_fault_switch
from .keys import PlatformKeys, default_keys_dir
from .lookup import LookupRoute, add_lookup_route
from .models import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_ATTACHMENTS_BYTES,
    MAX_BATCH,
    STATUS_NOTES,
    BatchRequest,
    HelpRequest,
    RatingRequest,
    StatusChange,
    SubmissionRequest,
    keyword_of,
)
from .staff import StaffRoute, StaffStore, add_staff_routes
from .storage import (
    BatchEntry,
    NewSubmission,
    Outcome,
    RejectedSubmission,
    Storage,
    StoredAnswer,
    StoredAttachment,
    SubmissionRecord,
)
from .terminal_keys import TerminalKeysRoute, add_terminal_key_routes
from .terminals import AuthRefused, TerminalRegistry
from .tracking import not_found_page, tracking_page

API_VERSION = "1"
API_PREFIX = "/api/v1"
DEFAULT_CATALOGUE = (
    Path(__file__).resolve().parent.parent / "assets" / "catalogue" / "demo_catalogue.json"
)
_JSON = "application/json"

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
_P = ParamSpec("_P")
_T = TypeVar("_T")
DB_THREADS = 8


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json(status_code: int, obj: object) -> Response:
    return Response(content=_json_bytes(obj), status_code=status_code, media_type=_JSON)


def _error(
    status_code: int, code: str, detail: str, fields: Sequence[FieldProblem] | None = None
) -> Response:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields is not None:
        body["fields"] = [{"field": f.field, "code": f.code} for f in fields]
    return _json(status_code, body)


def _not_found() -> Response:
    return _error(404, "not_found", "no such submission")


async def _too_large(request: Request, exc: Exception) -> Response:
    """413 for a body past its route's cap; the connection closes rather than read the rest."""
    cap = exc.cap if isinstance(exc, BodyTooLarge) else 0
    answer = _error(413, "body_too_large", f"the body is larger than {cap} bytes, this route's cap")
    answer.headers["Connection"] = "close"
    # After the answer is out and before the connection closes (a lingering close).
    answer.background = BackgroundTask(_linger, request)
    return answer


LINGER_BYTES = 1024 * 1024
LINGER_S = 0.5


async def _linger(request: Request) -> None:
    """Read and drop a little more of a refused body, briefly, once the 413 is sent: a socket
    closed with unread data is reset, and the reset takes the 413 with it before a client that
    was still sending has read it. What arrives past LINGER_BYTES or LINGER_S is left unread;
    the connection closes anyway."""
    drained = 0
    with contextlib.suppress(TimeoutError, RuntimeError, OSError):
        async with asyncio.timeout(LINGER_S):
            while drained < LINGER_BYTES:
                message = await request.receive()
                if message.get("type") != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _refused(request: Request, exc: Exception) -> Response:
    """A request no enrolled terminal signed (401), or one from a revoked terminal (403)."""
    if not isinstance(exc, AuthRefused):
        return _error(500, "internal_error", "")
    answer = _error(exc.status, exc.code, exc.reason)
    if exc.status == 401:
        answer.headers["WWW-Authenticate"] = 'Signature realm="terminals"'
    return answer


def _target(request: Request) -> str:
    """The request target as the terminal signed it: the path as sent, then its query."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    query = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


SEALED_MEMBER = "sealed"


def _unsealed(keys: PlatformKeys, doc: object, id_field: str) -> object:
    """The submission inside a sealed body ({"submission_id": ..., "sealed": envelope}), or doc
    as it came when it is not sealed. ValueError when a sealed body does not open, or opens to
    something for another id."""
    if not isinstance(doc, dict) or SEALED_MEMBER not in doc:
        return doc
    item_id = doc.get(id_field)
    if set(doc) != {id_field, SEALED_MEMBER} or not isinstance(item_id, str):
        raise ValueError("a sealed body has only its id and the sealed envelope")
    envelope = doc[SEALED_MEMBER]
    if not isinstance(envelope, dict):
        raise ValueError("the sealed envelope is not an object")
    try:
        opened = keys.open_sealed(envelope, item_id.encode("utf-8"))
    except SealError as exc:
        raise ValueError(f"the sealed body does not open ({exc.code})") from exc
    try:
        inner = loads_strictly(opened.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError("the sealed body is not UTF-8") from exc
    if not isinstance(inner, dict) or inner.get(id_field) != item_id:
        raise ValueError("the sealed body is for another id")
    return inner


def _unauthorized(admitted: bool | None) -> Response:
    """401 for a back-office request without the right bearer token."""
    if admitted is None:
        answer = _error(401, "credentials_missing", "a back-office bearer token is required")
        answer.headers["WWW-Authenticate"] = CHALLENGE
    else:
        answer = _error(401, "token_invalid", "the back-office token is not valid")
        answer.headers["WWW-Authenticate"] = CHALLENGE_INVALID
    return answer


def _problems(exc: ValidationError) -> list[FieldProblem]:
    found = {
        FieldProblem(".".join(str(part) for part in err["loc"]), keyword_of(err["type"]))
        for err in exc.errors(include_url=False, include_input=False)
    }
    return sorted(found, key=lambda p: (p.field, p.code))


def _checked_attachments(
    files: Sequence[models.Attachment],
) -> tuple[tuple[StoredAttachment, ...], list[FieldProblem]]:
    """The files decoded, or what is wrong with them (then nothing is decoded for keeps).

    Limits come before decoding, and the encoded length is compared with the stated size first,
    so a body cannot make the platform decode more than the limits allow.
    """
    problems: list[FieldProblem] = []
    if len(files) > MAX_ATTACHMENTS:
        problems.append(FieldProblem("attachments", "maxItems"))
    if sum(f.size for f in files) > MAX_ATTACHMENTS_BYTES:
        problems.append(FieldProblem("attachments", "maxSize"))
    if problems:
        return (), problems
    decoded: list[StoredAttachment] = []
    for index, file in enumerate(files):
        data = _decoded(file)
        if isinstance(data, str):
            problems.append(FieldProblem(f"attachments.{index}", data))
        else:
            decoded.append(StoredAttachment(file.name, file.content_type, file.sha256, data))
    return (() if problems else tuple(decoded)), problems


def _decoded(file: models.Attachment) -> bytes | str:
    """The file's data, or the keyword of the first check it fails."""
    if file.size > MAX_ATTACHMENT_BYTES:
        return "maxSize"
    return decode_base64(file.data_base64, file.size, file.sha256)


def _request_to_keep(body: dict[str, Any]) -> dict[str, Any]:
    """The body as stored with the submission: the files' data lives in its own table."""
    files = body.get("attachments")
    if not isinstance(files, list):
        return body
    kept = dict(body)
    kept["attachments"] = [
        {k: v for k, v in f.items() if k != "data_base64"} for f in files if isinstance(f, dict)
    ]
    return kept


def _state(record: SubmissionRecord) -> dict[str, Any]:
    return {
        "submission_id": record.submission_id,
        "receipt_number": record.receipt_number,
        "service_id": record.service_id,
        "status": record.status,
        "history": [{"status": e.status, "at": e.at, "note": e.note} for e in record.history],
    }


class _Platform:
    """The request handlers over one catalogue and one database."""

    def __init__(
        self,
        catalogue: Catalogue,
        storage: Storage,
        public_url: str | None,
        faults: SubmissionFaults,
        clock: Clock,
        *,
        back_office: BackOffice,
        terminals: TerminalRegistry,
        keys: PlatformKeys,
        ca_pem: str | None,
    ) -> None:
        self.catalogue = catalogue
        self.storage = storage
        self.public_url = public_url
        self.faults = faults
        self.clock = clock
        self.back_office = back_office
        self.terminals = terminals
        self.keys = keys
        self.ca_pem = ca_pem
        # Signed once per tracking address: terminals take no catalogue that does not verify
        # with the platform's key.
        self.served_catalogue = ServedCatalogue(catalogue, keys.sign_catalogue, public_url)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    async def run(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """call on the platform's own database threads, which close() joins (the event loop's
        shared pools are never joined, so a stopped server would leave threads behind)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="refplatform-db")
            pool = self._pool
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(call, *args, **kwargs))

    def close(self) -> None:
        """Finish the database work under way and end the database threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    async def _signed(self, request: Request, cap: int) -> tuple[str, RawBody | None]:
        """The terminal that signed this request, and its body (None when empty) read up to
        cap. AuthRefused when no enrolled terminal signed it (its exception handler answers).
        Whatever can be refused without the body is refused before a byte of it is read."""
        declared = request.headers.get("content-length", "")
        if declared.isdecimal() and int(declared) > cap:
            raise BodyTooLarge(cap)  # before anything else: it costs nothing to say
        await self.run(self.terminals.precheck, request.headers)
        raw = await read_capped(request, cap)
        try:
            with raw.view() as view:
                digest = hashlib.sha256(view).hexdigest()
                empty = len(view) == 0
            terminal_id = await self.run(
                self.terminals.authenticate,
                request.method,
                _target(request),
                request.headers,
                body_sha256=digest,
            )
        except BaseException:
            raw.close()
            raise
        if empty:
            raw.close()
            return terminal_id, None
        return terminal_id, raw

    async def _signed_json(self, request: Request, cap: int) -> tuple[str, object]:
        """The signing terminal and the body's JSON; ValueError when it is not JSON."""
        terminal_id, raw = await self._signed(request, cap)
        if raw is None:
            raise ValueError("the body is empty")
        return terminal_id, parse_json(raw)

    def _back_office_refusal(self, request: Request) -> Response | None:
        """401 unless the request carries the back-office token."""
        admitted = self.back_office.admits(request.headers.get("Authorization"))
        return None if admitted else _unauthorized(admitted)

    def now(self) -> str:
        return self.clock().isoformat(timespec="seconds")

    def tracking_url(self, request: Request, submission_id: str) -> str:
        base = self.public_url if self.public_url is not None else str(request.base_url)
        return f"{base.rstrip('/')}/track/{quote(submission_id, safe='')}"

    async def health(self) -> dict[str, str]:
        """Whether the platform is up, and the API version it speaks."""
        return {"status": "ok", "api_version": API_VERSION}

    async def get_catalogue(self, request: Request) -> Response:
        """The service catalogue: guides, form schemas and questions."""
        content = self.served_catalogue.content(str(request.base_url))
        return Response(content=content, media_type=_JSON)

    async def get_service(self, service_id: str) -> Response:
        """One service of the catalogue."""
        service = self.catalogue.service(service_id)
        if service is None:
            return _error(404, "unknown_service", "no such service in the catalogue")
        return _json(200, service)

    async def post_submission(
        self,
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", description="the body's submission_id"),
        ] = None,
    ) -> Response:
        """Take a submission. The Idempotency-Key header must equal its submission_id; a repeat
        with the same body gets the first answer again, with another body 409."""
        injected = await self.faults.before_submission(request)
        if injected is not None:
            return injected
        read = await self._read_submission(request, idempotency_key)
        if isinstance(read, Response):
            return read
        envelope, body = read
        # The files' data is part of the body, so their bytes take part in the idempotency
        # comparison; hashing megabytes of it stays off the event loop.
        if envelope.attachments:
            body_hash = await self.run(canonical_hash, body)
        else:
            body_hash = canonical_hash(body)
        earlier = await self.run(self.storage.earlier_answer, envelope.submission_id, body_hash)
        if earlier is None:
            # A key seen before is answered as before, even if the catalogue changed since.
            stored = await self.run(self._check_and_store, request, envelope, body, body_hash)
            if isinstance(stored, Response):
                return stored
            earlier = stored
            if earlier.outcome is Outcome.CREATED:
                logger.info("submission %s received", envelope.submission_id)
        if earlier.outcome is Outcome.CONFLICT:
            return _error(409, "idempotency_conflict", "this key was used before with another body")
        return Response(content=earlier.body, status_code=earlier.status_code, media_type=_JSON)

    async def post_submission_batch(self, request: Request) -> Response:
        """Take up to 100 submissions at once, each under its own submission_id as the key.
        Every item is answered, in order, with the status and body POST /submissions would
        have given it alone; the batch itself is answered 200. Stored in one transaction."""
        injected = await self.faults.before_submission(request)
        if injected is not None:
            return injected
        try:
            terminal_id, doc = await self._signed_json(request, BATCH_BODY_BYTES)
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        items = doc.get("submissions") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or len(doc) != 1 or not isinstance(items, list):
            return _error(400, "bad_request", 'the body is not {"submissions": [...]}')
        if not 1 <= len(items) <= MAX_BATCH:
            return _error(400, "batch_size", f"a batch holds 1 to {MAX_BATCH} submissions")
        results = await self.run(self._settle_batch, request, items, terminal_id)
        return Response(content=b'{"results":[' + b",".join(results) + b"]}", media_type=_JSON)

    def _settle_batch(
        self, request: Request, items: list[object], terminal_id: str
    ) -> list[bytes]:
        """Each item's result as JSON, in order (runs on a database thread)."""
        results: list[bytes] = [b""] * len(items)
        entries: list[BatchEntry] = []
        pending: list[tuple[int, Response | None]] = []  # (index, refusal) per entry
        for index, item in enumerate(items):
            read = self._read_batch_item(item, terminal_id)
            if isinstance(read, Response):
                results[index] = _batch_result(item, read.status_code, bytes(read.body))
                continue
            envelope, body = read
            body_hash = canonical_hash(body)
            checked = self._check(request, envelope, body, body_hash)
            refusal = checked if isinstance(checked, Response) else None
            new = checked if isinstance(checked, NewSubmission) else None
            entries.append(BatchEntry(envelope.submission_id, body_hash, new))
            pending.append((index, refusal))
        answers = self.storage.store_many(entries) if entries else []
        for (index, refusal), entry, answer in zip(pending, entries, answers, strict=True):
            if answer is None:
                # A new key whose body was refused: answered as the single endpoint refuses it.
                if refusal is None:  # store_many answers None only where nothing was to be stored
                    raise RuntimeError("a new key without a refusal or a submission")
                status, content = refusal.status_code, bytes(refusal.body)
            elif answer.outcome is Outcome.CONFLICT:
                conflict = _error(
                    409, "idempotency_conflict", "this key was used before with another body"
                )
                status, content = 409, bytes(conflict.body)
            elif answer.outcome is Outcome.FOREIGN:
                status, content = 403, bytes(_filed_elsewhere().body)
            else:
                status, content = answer.status_code, answer.body
                if answer.outcome is Outcome.CREATED:
                    logger.info("submission %s received", entry.submission_id)
            results[index] = _batch_result(items[index], status, content)
        return results

    def _read_batch_item(
        self, item: object, terminal_id: str
    ) -> tuple[SubmissionRequest, dict[str, Any]] | Response:
        try:
            item = _unsealed(self.keys, item, "submission_id")
        except ValueError as exc:
            return _error(400, "sealed_invalid", str(exc))
        if not isinstance(item, dict):
            return _error(400, "bad_request", "the body is not a JSON object")
        try:
            envelope = SubmissionRequest.model_validate(item)
        except ValidationError as exc:
            return _error(400, "bad_request", "the body is not a submission", fields=_problems(exc))
        if envelope.terminal_id != terminal_id:
            return _terminal_mismatch()
        return envelope, item

    async def _read_submission(
        self, request: Request, idempotency_key: str | None
    ) -> tuple[SubmissionRequest, dict[str, Any]] | Response:
        if not idempotency_key:
            return _error(400, "idempotency_key_missing", "the Idempotency-Key header is missing")
        try:
            terminal_id, body = await self._signed_json(request, SUBMISSION_BODY_BYTES)
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        try:
            body = await self.run(_unsealed, self.keys, body, "submission_id")
        except ValueError as exc:
            return _error(400, "sealed_invalid", str(exc))
        if not isinstance(body, dict):
            return _error(400, "bad_request", "the body is not a JSON object")
        try:
            envelope = SubmissionRequest.model_validate(body)
        except ValidationError as exc:
            return _error(400, "bad_request", "the body is not a submission", fields=_problems(exc))
        if envelope.terminal_id != terminal_id:
            return _terminal_mismatch()
        if envelope.submission_id != idempotency_key:
            return _error(
                400,
                "idempotency_key_mismatch",
                "the Idempotency-Key header and the body's submission_id differ",
            )
        return envelope, body

    def _check_and_store(
        self,
        request: Request,
        envelope: SubmissionRequest,
        body: dict[str, Any],
        body_hash: str,
    ) -> Response | StoredAnswer:
        """Refuse a body that is not valid, or store it (runs on a database thread)."""
        checked = self._check(request, envelope, body, body_hash)
        if isinstance(checked, Response):
            return checked
        stored = self.storage.store_submission(checked)
        # Checked in the write transaction too: the refusal may have been kept since _check.
        return _filed_elsewhere() if stored.outcome is Outcome.FOREIGN else stored

    def _check(
        self,
        request: Request,
        envelope: SubmissionRequest,
        body: dict[str, Any],
        body_hash: str,
    ) -> Response | NewSubmission:
        """The refusal a new key's body gets, or what to store for it. A body refused for its
        answers alone is kept as rejected, for its terminal to correct (corrections.py); the
        id of another terminal's refused submission is refused whatever the body."""
        filed_by = self.storage.rejected_terminal(envelope.submission_id)
        if filed_by is not None and filed_by != envelope.terminal_id:
            return _filed_elsewhere()
        checked, rejected = self._weigh(request, envelope, body, body_hash)
        if rejected is not None:
            self.storage.keep_rejected(rejected, self.now())
            logger.info(
                "submission %s refused for its answers; kept for correction", rejected.submission_id
            )
        return checked

    def _weigh(
        self,
        request: Request,
        envelope: SubmissionRequest,
        body: dict[str, Any],
        body_hash: str,
    ) -> tuple[Response | NewSubmission, RejectedSubmission | None]:
        """The refusal a body gets, or what to store for it; and, when it is refused for its
        answers alone, the rejected record that lets its terminal correct them."""
        if self.catalogue.service(envelope.service_id) is None:
            return _error(404, "unknown_service", "no such service in the catalogue"), None
        problems = self.catalogue.validate_answers(envelope.service_id, envelope.answers)
        files, file_problems = _checked_attachments(envelope.attachments)
        if problems or file_problems:
            what = "answers or attachments" if file_problems else "answers"
            refusal = _error(
                422, "validation_failed", f"some {what} are not valid", [*problems, *file_problems]
            )
            if file_problems:
                return refusal, None  # new answers cannot mend a file
            rejected = RejectedSubmission(
                submission_id=envelope.submission_id,
                terminal_id=envelope.terminal_id,
                request=body,
                problems=tuple((p.field, p.code) for p in problems),
                response_body=bytes(refusal.body),
            )
            return refusal, rejected
        return self._new_submission(request, envelope, body, body_hash, files), None

    def _new_submission(
        self,
        request: Request,
        envelope: SubmissionRequest,
        body: dict[str, Any],
        body_hash: str,
        files: tuple[StoredAttachment, ...],
    ) -> NewSubmission:
        received_at = self.now()
        receipt = {
            "submission_id": envelope.submission_id,
            "receipt_number": envelope.receipt_number,
            "status": "received",
            "received_at": received_at,
            "tracking_url": self.tracking_url(request, envelope.submission_id),
        }
        return NewSubmission(
            submission_id=envelope.submission_id,
            body_hash=body_hash,
            service_id=envelope.service_id,
            receipt_number=envelope.receipt_number,
            request=_request_to_keep(body),
            response_status=201,
            response_body=_json_bytes(receipt),
            received_at=received_at,
            first_note=STATUS_NOTES["received"],
            terminal_id=envelope.terminal_id,
            attachments=files,
        )

    async def get_submission(self, submission_id: str) -> Response:
        """Status and history of a submission: what its tracking page shows, read only, to
        whoever has its unguessable id (the receipt's QR code)."""
        record = await self.run(self.storage.submission, submission_id)
        return _not_found() if record is None else _json(200, _state(record))

    async def post_rating(self, submission_id: str, request: Request) -> Response:
        """The citizen's satisfaction rating (GB/T 39735-2020); a second one replaces the first."""
        try:
            terminal_id, doc = await self._signed_json(request, RATING_BODY_BYTES)
            rating = RatingRequest.model_validate(doc)
        except ValidationError as exc:
            return _error(422, "validation_failed", "not a valid rating", fields=_problems(exc))
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        filed_by = await self.run(self.storage.terminal_of, submission_id)
        if filed_by is None:
            return _not_found()
        if filed_by != terminal_id:
            # The citizen rates at the terminal they applied at; no other may speak for them.
            return _terminal_mismatch()
        rated_at = self.now()
        known = await self.run(
            self.storage.rate,
            submission_id,
            rating.level,
            rating.comment,
            rated_at,
            reason=rating.reason,
            call_back=rating.call_back,
        )
        if not known:
            return _not_found()
        return _json(
            201, {"submission_id": submission_id, "level": rating.level, "rated_at": rated_at}
        )

    async def post_help_request(
        self,
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", description="the body's help_request_id"),
        ] = None,
    ) -> Response:
        """A citizen at a terminal asked for staff. Kept once under its key; a repeat with the
        same body gets the first answer again, with another body 409."""
        try:
            terminal_id, body = await self._signed_json(request, HELP_BODY_BYTES)
            help_request = HelpRequest.model_validate(body)
        except ValidationError as exc:
            return _error(
                422, "validation_failed", "not a valid help request", fields=_problems(exc)
            )
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        if idempotency_key != help_request.help_request_id:
            return _error(400, "bad_request", "Idempotency-Key must equal help_request_id")
        if help_request.terminal_id != terminal_id:
            return _terminal_mismatch()
        outcome, stored = await self.run(
            self.storage.store_help_request,
            help_request.help_request_id,
            canonical_hash(body),
            help_request.model_dump(),
            self.now(),
        )
        if outcome is Outcome.CONFLICT:
            return _error(409, "idempotency_conflict", "this key was used before with another body")
        if outcome is Outcome.CREATED:
            logger.info("help requested at terminal %s", help_request.terminal_id)
        return _json(201 if outcome is Outcome.CREATED else 200, _help_answer(stored))

    async def get_help_requests(self, request: Request) -> Response:
        """Administration: the help requests received, oldest first."""
        if (refused := self._back_office_refusal(request)) is not None:
            return refused
        stored = await self.run(self.storage.help_requests)
        return _json(200, {"help_requests": [_help_answer(s) for s in stored]})

    async def post_status(self, submission_id: str, request: Request) -> Response:
        """Administration: move a case to another status, adding to its history."""
        if (refused := self._back_office_refusal(request)) is not None:
            return refused
        try:
            change = StatusChange.model_validate(await read_json(request, STATUS_BODY_BYTES))
        except ValidationError as exc:
            return _error(422, "validation_failed", "not a valid status", fields=_problems(exc))
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        note = change.note.model_dump() if change.note else STATUS_NOTES[change.status]
        record = await self.run(
            self.storage.set_status, submission_id, change.status, self.now(), note
        )
        return _not_found() if record is None else _json(200, _state(record))

    async def trust(self) -> Response:
        """The CA certificate of this platform's TLS certificate. Worth nothing by itself: a
        terminal being enrolled takes it only when its fingerprint matches the one in its code."""
        if self.ca_pem is None:
            return _error(404, "not_found", "this platform serves no TLS of its own")
        return _json(200, {"ca_pem": self.ca_pem})

    async def enrol_terminal(self, request: Request) -> Response:
        """A terminal enrols with its one-time code and its public key."""
        try:
            doc = await read_json(request, ENROL_BODY_BYTES)
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        code = doc.get("code") if isinstance(doc, dict) else None
        public_key = doc.get("public_key") if isinstance(doc, dict) else None
        if not isinstance(code, str) or not isinstance(public_key, str):
            return _error(400, "bad_request", 'the body is not {"code": ..., "public_key": ...}')
        terminal_id = await self.run(self.terminals.enrol, code, public_key)
        logger.info("terminal %s enrolled", terminal_id)
        return _json(
            201,
            {
                "terminal_id": terminal_id,
                "signing_keys": [
                    {"key_id": self.keys.signing_key_id, "public_key": self.keys.signing_public_b64}
                ],
                "sealing_key": {
                    "key_id": self.keys.sealing_key_id,
                    "public_key": self.keys.sealing_public_b64,
                },
            },
        )

    async def issue_enrolment_code(self, request: Request) -> Response:
        """Back office: a one-time code a terminal enrols with (with the CA's fingerprint when
        this platform serves TLS)."""
        if (refused := self._back_office_refusal(request)) is not None:
            return refused
        try:
            doc = await read_json(request, ENROL_BODY_BYTES)
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        terminal_id = doc.get("terminal_id") if isinstance(doc, dict) else None
        if not isinstance(terminal_id, str):
            return _error(400, "bad_request", 'the body is not {"terminal_id": ...}')
        try:
            issued = await self.run(self.terminals.issue_code, terminal_id)
        except ValueError as exc:
            return _error(422, "terminal_id_invalid", str(exc))
        code = issued.secret
        if self.ca_pem is not None:
            code += "/" + ca_fingerprint(self.ca_pem.encode("ascii"))
        expires = dt.datetime.fromtimestamp(issued.expires_at, dt.UTC)
        return _json(
            201,
            {
                "terminal_id": terminal_id,
                "code": code,
                "expires_at": expires.isoformat(timespec="seconds"),
            },
        )

    async def revoke_terminal(self, terminal_id: str, request: Request) -> Response:
        """Back office: a terminal's access is withdrawn; what it has queued stays on it."""
        if (refused := self._back_office_refusal(request)) is not None:
            return refused
        if not await self.run(self.terminals.revoke, terminal_id):
            return _error(404, "not_found", "no such terminal")
        logger.info("terminal %s revoked", terminal_id)
        return _json(200, {"terminal_id": terminal_id, "status": "revoked"})

    async def track(self, submission_id: str) -> HTMLResponse:
        """The bilingual tracking page the receipt's QR code opens."""
        record = await self.run(self.storage.submission, submission_id)
        if record is None:
            return HTMLResponse(not_found_page(), status_code=404)
        service = self.catalogue.service(record.service_id)
        return HTMLResponse(tracking_page(record, service["name"] if service else None))


def _terminal_mismatch() -> Response:
    return _error(403, "terminal_mismatch", "the body names another terminal than the signature")


def _filed_elsewhere() -> Response:
    """The id of a submission another terminal filed (refused, kept for it to correct)."""
    return _error(403, "terminal_mismatch", "another terminal filed this submission")


def _batch_result(item: object, status: int, body: bytes) -> bytes:
    """One item's entry in a batch answer; body is the single endpoint's JSON body, as is."""
    sid = item.get("submission_id") if isinstance(item, dict) else None
    named = _json_bytes(sid if isinstance(sid, str) else None)
    return b'{"submission_id":' + named + b',"status":%d,"body":' % status + body + b"}"


def _answers(
    ok_status: int, ok_model: type[BaseModel], description: str, *errors: int
) -> dict[int | str, dict[str, Any]]:
    answers: dict[int | str, dict[str, Any]] = {
        ok_status: {"model": ok_model, "description": description}
    }
    answers.update({code: {"model": models.ErrorBody} for code in errors})
    return answers


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": ref}}}}


def _help_answer(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "help_request_id": stored["help_request_id"],
        "terminal_id": stored["terminal_id"],
        "page": stored["page"],
        "requested_at": stored["requested_at"],
        "received_at": stored["received_at"],
        "status": "open",
    }


# The back-office routes ask for the staff's bearer token (refplatform/backoffice.py).
_BACK_OFFICE: dict[str, Any] = {"security": [{SECURITY_SCHEME_NAME: []}]}
# The terminal routes ask for an enrolled terminal's signature (docs/api.md, terminals.py).
_TERMINAL_SCHEME = "terminalSignature"
_SIGNED: dict[str, Any] = {"security": [{_TERMINAL_SCHEME: []}]}
_TERMINAL_SECURITY = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Signature",
    "description": (
        "an enrolled terminal's Ed25519 signature, with X-Terminal-Id, X-Request-Timestamp and "
        "X-Request-Nonce (docs/api.md, 'Terminals: enrolment and signed requests')"
    ),
}


def _add_routes(
    app: FastAPI,
    platform: _Platform,
    bundles: BundleRoute,
    audit: AuditRoute,
    corrections: CorrectionRoute,
) -> None:
    route = app.add_api_route
    v1 = API_PREFIX
    route(f"{v1}/health", platform.health, response_model=models.Health)
    route(
        f"{v1}/catalogue",
        platform.get_catalogue,
        response_class=Response,
        responses=_answers(200, models.Catalogue, "The service catalogue"),
    )
    route(
        f"{v1}/services/{{service_id}}",
        platform.get_service,
        response_class=Response,
        responses=_answers(200, models.Service, "One service of the catalogue", 404),
    )
    route(
        f"{v1}/submissions",
        platform.post_submission,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        responses=_answers(
            201, models.SubmissionReceipt, "Received, now or before", 400, 404, 409, 413, 422
        ),
        openapi_extra={**_json_body(SubmissionRequest), **_SIGNED},
    )
    route(
        f"{v1}/submissions/batch",
        platform.post_submission_batch,
        methods=["POST"],
        response_class=Response,
        responses=_answers(
            200, models.BatchAnswer, "One result per submission, in order", 400, 413
        ),
        openapi_extra={**_json_body(BatchRequest), **_SIGNED},
    )
    route(
        f"{v1}/bundles",
        bundles.post_bundle,
        methods=["POST"],
        response_class=Response,
        responses=_answers(
            200, BundleAnswer, "One result per item, in the bundle's order", 400, 403, 413
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": BUNDLE_REQUEST_SCHEMA}},
            },
            **_SIGNED,
        },
    )
    route(
        f"{v1}/audit",
        audit.post_audit,
        methods=["POST"],
        response_class=Response,
        responses=_answers(
            200, AuditAnswer, "The last entry of the terminal's log now held", 400, 409, 413, 422
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": AUDIT_REQUEST_SCHEMA}},
            },
            **_SIGNED,
        },
    )
    route(
        f"{v1}/submissions/{{submission_id}}",
        platform.get_submission,
        response_class=Response,
        responses=_answers(200, models.SubmissionState, "Status and history", 404),
    )
    route(
        f"{v1}/submissions/{{submission_id}}/rating",
        platform.post_rating,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        responses=_answers(
            201, models.RatingAnswer, "Rated; a later rating replaces it", 400, 404, 413, 422
        ),
        openapi_extra={**_json_body(RatingRequest), **_SIGNED},
    )
    route(
        f"{v1}/submissions/{{submission_id}}/corrections",
        corrections.post_correction,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        responses=_answers(
            201,
            models.SubmissionReceipt,
            "Corrected and received, under the submission's own id and receipt number",
            400,
            403,
            409,
            413,
            422,
        ),
        openapi_extra={**_json_body(CorrectionRequest), **_SIGNED},
    )
    route(
        f"{v1}/submissions/{{submission_id}}/status",
        platform.post_status,
        methods=["POST"],
        response_class=Response,
        responses=_answers(
            200, models.SubmissionState, "The case after the change", 400, 401, 404, 413, 422
        ),
        openapi_extra={**_json_body(StatusChange), **_BACK_OFFICE},
        tags=["administration"],
    )
    route(
        f"{v1}/help-requests",
        platform.post_help_request,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        responses=_answers(
            201, models.HelpAnswer, "Staff are told; a repeat is answered 200", 400, 409, 413, 422
        ),
        openapi_extra={**_json_body(HelpRequest), **_SIGNED},
    )
    route(
        f"{v1}/help-requests",
        platform.get_help_requests,
        response_class=Response,
        responses=_answers(200, models.HelpList, "The help requests received", 401),
        openapi_extra=_BACK_OFFICE,
        tags=["administration"],
    )
    route(f"{v1}/trust", platform.trust, response_class=Response, tags=["terminals"])
    route(
        f"{v1}/terminals/enrol",
        platform.enrol_terminal,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        tags=["terminals"],
    )
    route(
        f"{v1}/terminals",
        platform.issue_enrolment_code,
        methods=["POST"],
        status_code=201,
        response_class=Response,
        openapi_extra=_BACK_OFFICE,
        tags=["administration"],
    )
    route(
        f"{v1}/terminals/{{terminal_id}}/revoke",
        platform.revoke_terminal,
        methods=["POST"],
        response_class=Response,
        openapi_extra=_BACK_OFFICE,
        tags=["administration"],
    )
    route(
        "/track/{submission_id}",
        platform.track,
        response_class=HTMLResponse,
        responses={404: {"content": {"text/html": {}}, "description": "Unknown submission"}},
    )


def _add_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        code = "not_found" if status == 404 else "bad_request"
        return _error(status, code, str(getattr(exc, "detail", "")))

    async def request_error(request: Request, exc: Exception) -> Response:
        return _error(400, "bad_request", "the request does not match the API")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(AuthRefused, _refused)


def _document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    # Request bodies are read by hand (the key header is checked before the body), so their
    # models join the components here.
    _, definitions = models_json_schema(
        [
            (m, "validation")
            for m in (
                SubmissionRequest,
                BatchRequest,
                RatingRequest,
                StatusChange,
                HelpRequest,
                CorrectionRequest,
            )
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    document["components"]["securitySchemes"] = {
        SECURITY_SCHEME_NAME: SECURITY_SCHEME,
        _TERMINAL_SCHEME: _TERMINAL_SECURITY,
    }
    # Path parameters are plain strings and never fail FastAPI's own validation; what does
    # fail is answered as an ErrorBody, so the framework's 422 shape is not part of this API.
    for path in document["paths"].values():
        for operation in path.values():
            default_422 = operation["responses"].get("422", {})
            if "HTTPValidationError" in json.dumps(default_422):
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def create_app(
    db_path: Path,
    catalogue_path: Path = DEFAULT_CATALOGUE,
    public_url: str | None = None,
    *,
    faults: SubmissionFaults | None = None,
    clock: Clock = _local_now,
    back_office_token: str | None = None,
    keys_dir: Path | None = None,
    tls_ca: Path | None = None,
) -> FastAPI:
    """The platform over the database at db_path serving the catalogue file at catalogue_path.

    public_url is where citizens' phones reach the tracking pages (the base of tracking_url);
    without it the address the request came in on is used. faults is consulted first by every
    submission (nothing is injected by default). back_office_token opens the back-office
    routes (refplatform/backoffice.py); without one they stay closed to everyone. keys_dir
    holds the platform's signing and sealing keys (made there on first start; default: beside
    the database). tls_ca is the CA certificate (PEM) behind the TLS certificate the platform is
    served with, handed to terminals being enrolled.
    """
    platform = _Platform(
        Catalogue.from_file(catalogue_path),
        Storage(db_path),
        public_url,
        faults if faults is not None else NoFaults(),
        clock,
        back_office=BackOffice(back_office_token if back_office_token is not None else new_token()),
        terminals=TerminalRegistry(db_path),
        keys=PlatformKeys(keys_dir if keys_dir is not None else default_keys_dir(db_path)),
        ca_pem=tls_ca.read_text("ascii") if tls_ca is not None else None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        platform.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Hall terminal platform API",
        version=API_VERSION,
        description="Reference implementation of the platform API v1 (docs/api.md).",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.storage = platform.storage
    app.state.catalogue = platform.catalogue
    app.state.terminals = platform.terminals
    app.state.keys = platform.keys
    bundles = BundleRoute(
        signed_json=platform._signed_json,
        run=platform.run,
        settle=platform._settle_batch,
        error=_error,
        keys=platform.terminals,
    )
    app.state.audit = AuditStore(db_path)
    audit = AuditRoute(
        store=app.state.audit,
        signed_json=platform._signed_json,
        run=platform.run,
        error=_error,
        answer=_json,
        keys=platform.terminals,
        now=platform.now,
    )
    corrections = CorrectionRoute(
        signed_json=platform._signed_json,
        run=platform.run,
        storage=platform.storage,
        keys=platform.keys,
        weigh=platform._weigh,
        error=_error,
        problems=_problems,
        now=platform.now,
    )
    _add_routes(app, platform, bundles, audit, corrections)
    add_lookup_route(
        app,
        LookupRoute(
            signed_json=platform._signed_json,
            run=platform.run,
            storage=platform.storage,
            error=_error,
            answer=_json,
            problems=_problems,
        ),
        models.ErrorBody,
        _SIGNED,
    )
    add_staff_routes(
        app,
        StaffRoute(
            store=StaffStore(db_path),
            signed=platform._signed,
            run=platform.run,
            error=_error,
            answer=_json,
            back_office_refusal=platform._back_office_refusal,
            now=platform.now,
        ),
        models.ErrorBody,
    )
    add_terminal_key_routes(
        app,
        TerminalKeysRoute(
            platform.terminals, platform.keys, platform.storage, platform.catalogue, platform.run
        ),
    )
    _add_error_handlers(app)
    install_fault_switch(app, platform.faults)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_text(app: FastAPI) -> str:
    """The OpenAPI document as committed in refplatform/openapi.json."""
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2) + "\n"
