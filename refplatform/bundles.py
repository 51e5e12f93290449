"""POST /api/v1/bundles: submissions a village terminal signed into a bundle, brought in by a hall
terminal (kiosk/bundles.py has the format).

The request is signed by the hall terminal that carries the bundle, like every terminal request.
The bundle is signed by the village terminal that made it, and that signature is checked with the
key the platform enrolled the village terminal with (its terminals table), never with the key the
file carries: a bundle re-signed by anyone else, even one whose embedded key matches its own
signature, is refused, and so is a bundle from a terminal unknown or revoked.

Each item is then what the village terminal would have sent online: a submission sealed to the
platform's key. The items go through the batch endpoint's own code (open, check, store
idempotently in one transaction), with the village terminal as the one whose submissions they
must be, so a bundle cannot file a submission in another terminal's name, and a submission that
arrives both online and in one or more bundles is stored once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from kiosk.bundles import (
    BAD_SIGNATURE,
    FORMAT,
    MALFORMED,
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_ITEMS,
    BundleError,
    check_bundle,
    verify_bundle,
)

from .bodies import MIB, loads_strictly
from .models import BatchResult
from .terminals import EnrolledKey

logger = logging.getLogger(__name__)

# The file's bytes as the hall terminal read them (capped there too), and room for nothing else.
BUNDLE_BODY_BYTES = MAX_BUNDLE_BYTES + MIB
SIGNER_UNKNOWN = "bundle_signer_unknown"
SIGNER_REVOKED = "bundle_signer_revoked"
_JSON = "application/json"

Run = Callable[..., Awaitable[Any]]
SignedJson = Callable[[Request, int], Awaitable[tuple[str, object]]]
Settle = Callable[[Request, list[object], str], list[bytes]]
ErrorAnswer = Callable[[int, str, str], Response]


class BundleAnswer(BaseModel):
    bundle_id: str = Field(description="the bundle's id")
    terminal_id: str = Field(description="the village terminal that made the bundle")
    results: list[BatchResult] = Field(
        description="one per item, in the bundle's order, as POST /submissions/batch answers"
    )


# The request body: the bundle file's JSON as the village terminal wrote it (docs/api.md).
BUNDLE_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "Bundle",
    "type": "object",
    "required": [
        "format",
        "bundle_id",
        "terminal_id",
        "created_at",
        "items",
        "signer_public_key",
        "signature",
    ],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "bundle_id": {"type": "string", "description": "a UUID, the bundle's own id"},
        "terminal_id": {"type": "string", "description": "the village terminal that signed it"},
        "created_at": {"type": "string", "description": "ISO 8601"},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BUNDLE_ITEMS,
            "items": {
                "type": "object",
                "required": ["submission_id", "payload"],
                "additionalProperties": False,
                "properties": {
                    "submission_id": {"type": "string"},
                    "payload": {
                        "type": "string",
                        "description": 'JSON text: {"submission_id": ..., "sealed": envelope}',
                    },
                },
            },
        },
        "signer_public_key": {"type": "string", "description": "base64, raw 32 bytes"},
        "signature": {
            "type": "object",
            "required": ["alg", "key_id", "value"],
            "properties": {
                "alg": {"const": "Ed25519"},
                "key_id": {"type": "string"},
                "value": {"type": "string", "description": "base64 Ed25519 signature"},
            },
        },
    },
}


class EnrolledKeys(Protocol):
    """Where the platform keeps the keys terminals enrolled with (TerminalRegistry)."""

    def key_of(self, terminal_id: str) -> EnrolledKey | None: ...


class BundleRoute:
    """The handler of POST /bundles, over the batch endpoint's parts (refplatform/app.py)."""

    def __init__(
        self,
        *,
        signed_json: SignedJson,
        run: Run,
        settle: Settle,
        error: ErrorAnswer,
        keys: EnrolledKeys,
    ) -> None:
        self._signed_json = signed_json
        self._run = run
        self._settle = settle
        self._error = error
        self._keys = keys

    async def post_bundle(self, request: Request) -> Response:
        """Take a bundle of sealed submissions a village terminal signed, brought by the hall
        terminal that signs this request. Every item is answered, in order, as POST
        /submissions/batch would answer it for the village terminal; the bundle is answered
        200. A bundle whose signature does not verify with the village terminal's enrolled key,
        or from a terminal unknown or revoked, is refused whole (403) and nothing is stored."""
        try:
            carrier, doc = await self._signed_json(request, BUNDLE_BODY_BYTES)
        except ValueError:
            return self._error(400, "bad_request", "the body is not JSON")
        checked = await self._run(_checked, doc, self._keys)
        if isinstance(checked, Refusal):
            logger.warning("bundle refused (%s), brought by terminal %s", checked.code, carrier)
            return self._error(checked.status, checked.code, checked.detail)
        bundle_id, village, items = checked.bundle_id, checked.terminal_id, checked.items
        results = await self._run(self._settle, request, items, village)
        logger.info(
            "bundle %s of terminal %s (%d item(s)) brought by terminal %s",
            bundle_id,
            village,
            len(items),
            carrier,
        )
        head = (
            b'{"bundle_id":' + _quoted(bundle_id) + b',"terminal_id":' + _quoted(village)
        ) + b',"results":['
        return Response(content=head + b",".join(results) + b"]}", media_type=_JSON)


@dataclass(frozen=True)
class Checked:
    bundle_id: str
    terminal_id: str  # the village terminal's
    items: list[object]  # as the batch endpoint takes them


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    detail: str


def _checked(doc: object, keys: EnrolledKeys) -> Checked | Refusal:
    """The bundle's items once its signature verifies with its terminal's enrolled key, or the
    refusal. Runs on a database thread: a large bundle's canonical form takes a while."""
    try:
        bundle = check_bundle(doc)
    except BundleError:
        return Refusal(400, MALFORMED, "the body is not a bundle of format " + FORMAT)
    enrolled = keys.key_of(bundle.terminal_id)
    if enrolled is None:
        return Refusal(403, SIGNER_UNKNOWN, "no such terminal is enrolled")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(enrolled.public_key)
    except ValueError:
        return Refusal(403, SIGNER_UNKNOWN, "the terminal's enrolled key is not usable")
    if not verify_bundle(bundle, public_key):
        return Refusal(403, BAD_SIGNATURE, "the signature does not verify with its terminal's key")
    if not enrolled.active:
        return Refusal(403, SIGNER_REVOKED, "the terminal that made the bundle was revoked")
    try:
        items = [loads_strictly(item.payload) for item in bundle.items]
    except ValueError:
        return Refusal(400, MALFORMED, "an item is not JSON")
    return Checked(bundle.bundle_id, bundle.terminal_id, items)


def _quoted(text: str) -> bytes:
    return json.dumps(text).encode("ascii")
