"""Request bodies: read as a stream up to a cap per route, hashed and decoded piece by piece.

A body is never taken whole from the server: it is read chunk by chunk and refused as soon as it
passes its route's cap (at once when its Content-Length already says so), so what a client sends
costs the platform at most the cap, never the size of the body.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import mmap

from starlette.requests import Request

from .models import MAX_ATTACHMENTS_BYTES

KIB = 1024
MIB = 1024 * KIB

# One submission: its files' data as base64 (20 MiB of files is 26.7 MiB of text) and room for
# the answers, the applicant and each file's name, type and digest.
SUBMISSION_BODY_BYTES = 32 * MIB
# A batch: the terminal sends a submission larger than its batch budget alone, so the largest
# batch is one submission at its largest, or many small ones well under this.
BATCH_BODY_BYTES = 40 * MIB
STATUS_BODY_BYTES = 64 * KIB  # a status and a note in two languages
RATING_BODY_BYTES = 16 * KIB  # a level and a comment of at most 500 characters
HELP_BODY_BYTES = 16 * KIB  # a few short fields
ENROL_BODY_BYTES = 4 * KIB  # a code and a public key, or a terminal id

# Decoded bytes per piece of an attachment: a multiple of 3, so no piece but the last has padding.
_PIECE_BYTES = 3 * 256 * KIB
_PIECE_CHARS = _PIECE_BYTES // 3 * 4

if SUBMISSION_BODY_BYTES < 4 * ((MAX_ATTACHMENTS_BYTES + 2) // 3) + 4 * MIB:
    raise RuntimeError("a submission's cap must leave room for its largest files as base64")


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than cap bytes; nothing more of it is read."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the body is larger than {cap} bytes")
        self.cap = cap


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class RawBody:
    """A body's bytes in an anonymous mapping of their own. Closing it unmaps them, so their
    memory goes back to the system at once instead of staying in the allocator's heap (where a
    refused 32 MiB body was still counted in the platform's size long after)."""

    def __init__(self, capacity: int) -> None:
        # Only the pages written to are ever backed by memory: reserving the cap costs nothing.
        self._map = mmap.mmap(-1, max(capacity, 1))
        self.capacity = capacity
        self.size = 0

    def append(self, chunk: bytes) -> None:
        end = self.size + len(chunk)
        if end > self.capacity:
            raise ValueError("more than the capacity")
        self._map[self.size : end] = chunk
        self.size = end

    def view(self) -> memoryview:
        """The bytes, without a copy; release the view before close()."""
        return memoryview(self._map)[: self.size]

    def text(self) -> str:
        """The bytes as strict UTF-8 (UnicodeDecodeError otherwise)."""
        with self.view() as view:
            return str(view, "utf-8")

    def close(self) -> None:
        self._map.close()

    def __enter__(self) -> RawBody:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def read_capped(request: Request, cap: int) -> RawBody:
    """The body's bytes (the caller closes them); BodyTooLarge once it passes cap, before a byte
    is read when the Content-Length says so."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > cap:
        raise BodyTooLarge(cap)
    body = RawBody(int(declared) if declared.isdecimal() else cap)
    try:
        async with contextlib.aclosing(request.stream()) as chunks:
            async for chunk in chunks:
                if body.size + len(chunk) > cap:
                    raise BodyTooLarge(cap)
                body.append(chunk)
    except BaseException:
        body.close()
        raise
    return body


def parse_json(raw: RawBody) -> object:
    """The JSON in raw, which is closed once decoded; ValueError when it is not strict JSON in
    UTF-8. At most two copies of the body live at once: the bytes and their text while
    decoding, then the text and what is parsed from it."""
    with raw:
        try:
            text = raw.text()
        except UnicodeDecodeError as exc:
            raise ValueError(str(exc)) from exc
    return loads_strictly(text)


def loads_strictly(text: str) -> object:
    """Strict JSON (no NaN or Infinity); ValueError for anything else, nesting too deep for the
    parser included."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(type(exc).__name__) from exc


async def read_json(request: Request, cap: int) -> object:
    """The parsed body: BodyTooLarge past cap, ValueError when it is not strict JSON in UTF-8."""
    return parse_json(await read_capped(request, cap))


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(body: object) -> str:
    """The digest storage.canonical_hash gives, fed to SHA-256 piece by piece: the canonical
    text of a body with megabytes of files is never built whole."""
    digest = hashlib.sha256()
    for piece in _CANONICAL.iterencode(body):
        digest.update(piece.encode("utf-8"))
    return digest.hexdigest()


def decode_base64(text: str, size: int, sha256_hex: str) -> bytes | str:
    """The data of text (standard base64, padded, in its one spelling) when it is size bytes
    with that SHA-256; otherwise the keyword of the first check it fails.

    The text is decoded a piece at a time: besides the result only one piece (768 KiB) is
    held, and the result twice for a moment at the end.
    """
    if len(text) != 4 * ((size + 2) // 3):
        return "size"
    data = bytearray()
    digest = hashlib.sha256()
    spelled_once = True
    for start in range(0, len(text), _PIECE_CHARS):
        piece = text[start : start + _PIECE_CHARS]
        try:
            decoded = base64.b64decode(piece, validate=True)
        except ValueError:  # binascii.Error, or not ASCII at all
            return "contentEncoding"
        if start + _PIECE_CHARS < len(text) and len(decoded) != _PIECE_BYTES:
            return "contentEncoding"  # padding before the end, as decoding it whole finds
        # One spelling per content: the body's digest is its identity under the key.
        spelled_once = spelled_once and base64.b64encode(decoded) == piece.encode("ascii")
        digest.update(decoded)
        data += decoded
    if len(data) != size:
        return "size"
    if not spelled_once:
        return "contentEncoding"
    if not hmac.compare_digest(digest.hexdigest(), sha256_hex):
        return "sha256"
    return bytes(data)
