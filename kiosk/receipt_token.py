"""The receipt's signed token: what its QR code carries, checkable offline by any terminal.

A token says which receipt it is (receipt number, submission id, service, time, terminal) and
carries the Ed25519 signature the terminal made over that with its enrolled key. The platform
publishes every terminal's public key in a signed list (GET /api/v1/terminals/keys, docs/api.md),
so a terminal that has the list checks a receipt from any other without asking anyone.

The encoding keeps the QR small: the fields in binary, then the signature, in RFC 4648 base32
(upper case, no padding). Base32 uses only characters of the QR code's alphanumeric mode, which
packs them a third tighter than bytes; the QR of a whole tracking link then fits version 9 at
error correction M. Only the canonical spelling of a token is taken: a token that decodes to the
same bytes under another spelling is refused like any other change.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import struct
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from kiosk.catalogue import CatalogueError
from kiosk.errors import UserFacingError
from kiosk.i18n import N_
from kiosk.trust import ed25519_public_from_b64, verify_catalogue

FORMAT_VERSION: Final = 1
# Signed before the fields, never sent: a receipt signature can be nothing else the terminal's
# key signs (its requests to the platform, its audit entries).
SIGNING_CONTEXT: Final = b"hall-terminal receipt token v1\x00"
LINK_QUERY_NAME: Final = "t"  # <public tracking URL>?t=<token>
KEYS_KIND: Final = "terminal_keys"
MAX_TOKEN_CHARS: Final = 1024
MAX_FIELD_BYTES: Final = 255

_SIGNATURE_BYTES: Final = 64
_UUID_BYTES: Final = 16
_HEAD = struct.Struct(">B16s5sb")  # version, submission id, seconds (40 bits), offset / 15 min
_SHORT_NUMBER = struct.Struct(">BH")  # 0 (no text follows), the receipt number's sequence
_QUARTER_HOUR_S: Final = 900
_MAX_QUARTERS: Final = 95  # UTC offsets lie strictly within a day
_MAX_SECONDS: Final = (1 << 40) - 1
_BASE32 = re.compile(r"[A-Z2-7]+")


class ReceiptTokenError(UserFacingError):
    """A receipt's code that cannot be trusted: code says why (for the log and for tests)."""

    MALFORMED: Final = "malformed"
    NOT_AUTHENTIC: Final = "not_authentic"
    UNKNOWN_TERMINAL: Final = "unknown_terminal"
    REVOKED_TERMINAL: Final = "revoked_terminal"

    _MESSAGES: Final = {
        MALFORMED: N_(
            "This code is not the code of a receipt, or it could not be read completely. "
            "Please try again, or ask staff for help."
        ),
        NOT_AUTHENTIC: N_(
            "This receipt's code has been changed since it was printed, so it cannot be "
            "trusted. Please ask staff for help."
        ),
        UNKNOWN_TERMINAL: N_(
            "This receipt comes from a terminal this one does not know yet, so its code cannot "
            "be checked here. Please ask staff for help."
        ),
        REVOKED_TERMINAL: N_(
            "This receipt comes from a terminal that has been taken out of service, so its code "
            "cannot be trusted. Please ask staff for help."
        ),
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(self._MESSAGES[code])
        self.code = code
        self.detail = detail


class TerminalKeysError(ValueError):
    """The platform's list of terminal keys is unsigned, wrongly signed or not in its format."""


@dataclass(frozen=True, slots=True)
class ReceiptClaim:
    """What a receipt's token says. issued_at carries its UTC offset and whole seconds."""

    receipt_number: str
    submission_id: str  # canonical UUID text, lower case
    service_id: str
    issued_at: dt.datetime
    terminal_id: str

    @property
    def time(self) -> str:
        """issued_at in RFC 3339, e.g. 2026-11-29T14:02:05+08:00."""
        return self.issued_at.isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class TerminalKeys:
    """The platform's published terminal keys: those in service, and the ids taken out of it."""

    active: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()

    def verify(self, token: str) -> ReceiptClaim:
        return verify_token(token, self.active, revoked=self.revoked)


# -- making and checking ---------------------------------------------------------------------


def make_token(claim: ReceiptClaim, key: Ed25519PrivateKey) -> str:
    """The token of claim signed with key (the terminal's enrolled key). ValueError for a claim
    that has no encoding: a naive time, an empty or over-long field, a submission id that is not
    a UUID in its canonical lower-case spelling."""
    fields = _fields(claim)
    signature = key.sign(SIGNING_CONTEXT + fields)
    return _b32(fields + signature)


def verify_token(
    token: str,
    public_keys_by_terminal: Mapping[str, Ed25519PublicKey],
    *,
    revoked: Collection[str] = (),
) -> ReceiptClaim:
    """What the token says, once its signature verifies with the key of the terminal it names.

    ReceiptTokenError otherwise: MALFORMED (not a token of this format), UNKNOWN_TERMINAL (no key
    for the terminal it names), REVOKED_TERMINAL (that terminal was taken out of service),
    NOT_AUTHENTIC (any change to what was signed)."""
    claim, fields, signature = _split(token)
    if claim.terminal_id in revoked:
        raise ReceiptTokenError(
            ReceiptTokenError.REVOKED_TERMINAL, f"terminal {claim.terminal_id} is revoked"
        )
    key = public_keys_by_terminal.get(claim.terminal_id)
    if key is None:
        raise ReceiptTokenError(
            ReceiptTokenError.UNKNOWN_TERMINAL, f"no key for terminal {claim.terminal_id!r}"
        )
    try:
        key.verify(signature, SIGNING_CONTEXT + fields)
    except InvalidSignature:
        raise ReceiptTokenError(
            ReceiptTokenError.NOT_AUTHENTIC, "the signature does not verify"
        ) from None
    return claim


def unverified_claim(token: str) -> ReceiptClaim:
    """What the token says, not yet checked: only to find which terminal's key to fetch.
    ReceiptTokenError (MALFORMED) when it is not a token of this format."""
    return _split(token)[0]


def _split(token: str) -> tuple[ReceiptClaim, bytes, bytes]:
    raw = _unb32(token)
    if len(raw) < _HEAD.size + 3 + _SIGNATURE_BYTES:
        raise ReceiptTokenError(ReceiptTokenError.MALFORMED, "too short")
    fields, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    return _claim(fields), fields, signature


# -- links --------------------------------------------------------------------------------------


def tracking_link(public_url: str, token: str) -> str:
    """What the QR code carries: the platform's public tracking page with the token."""
    return f"{public_url}?{LINK_QUERY_NAME}={token}"


def token_from_link(text: str) -> str:
    """The token in a scanned receipt code: its ?t= value, else its last path segment, else the
    text itself (a token typed or scanned alone). Nothing is checked here."""
    text = text.strip()
    if "://" not in text:
        return text
    parts = urlsplit(text)
    found = parse_qs(parts.query).get(LINK_QUERY_NAME)
    if found:
        return found[-1]
    return parts.path.rstrip("/").rsplit("/", 1)[-1]


# -- the published keys ------------------------------------------------------------------------


def parse_terminal_keys(
    document: Mapping[str, Any], signing_keys: Mapping[str, Ed25519PublicKey]
) -> TerminalKeys:
    """The platform's list of terminal keys, once its signature verifies with one of the
    platform's catalogue keys; TerminalKeysError otherwise."""
    try:
        body = verify_catalogue(document, signing_keys)
    except CatalogueError as exc:  # a CatalogueSignatureError
        raise TerminalKeysError(f"not signed by the platform: {exc}") from exc
    if body.get("kind") != KEYS_KIND:
        raise TerminalKeysError(f'"kind" is not "{KEYS_KIND}"')
    active = _keys(body.get("terminals"), "terminals")
    revoked = _keys(body.get("revoked"), "revoked")
    return TerminalKeys(
        active={tid: key for tid, key in active.items() if tid not in revoked},
        revoked=frozenset(revoked),
    )


def _keys(raw: object, where: str) -> dict[str, Ed25519PublicKey]:
    if not isinstance(raw, dict):
        raise TerminalKeysError(f"{where}: expected an object of terminal id to key")
    keys: dict[str, Ed25519PublicKey] = {}
    for terminal_id, text in raw.items():
        if not isinstance(terminal_id, str) or not isinstance(text, str):
            raise TerminalKeysError(f"{where}: expected text keys and values")
        try:
            keys[terminal_id] = ed25519_public_from_b64(text)
        except ValueError as exc:
            raise TerminalKeysError(f"{where}.{terminal_id}: not an Ed25519 key") from exc
    return keys


# -- the binary form -------------------------------------------------------------------------


def _fields(claim: ReceiptClaim) -> bytes:
    at = claim.issued_at
    offset = at.utcoffset()
    if offset is None:
        raise ValueError("the receipt's time needs its UTC offset")
    quarters, rest = divmod(int(offset.total_seconds()), _QUARTER_HOUR_S)
    seconds = int(at.timestamp())
    if rest or abs(quarters) > _MAX_QUARTERS or not 0 <= seconds <= _MAX_SECONDS:
        raise ValueError("the receipt's time cannot be encoded")
    try:
        submission = uuid.UUID(claim.submission_id)
    except ValueError as exc:
        raise ValueError("the submission id is not a UUID") from exc
    if str(submission) != claim.submission_id:
        raise ValueError("the submission id is not in its canonical spelling")
    head = _HEAD.pack(FORMAT_VERSION, submission.bytes, seconds.to_bytes(5, "big"), quarters)
    sequence = _sequence_of(claim)
    number = (
        _text(claim.receipt_number, "receipt number")
        if sequence is None
        else _SHORT_NUMBER.pack(0, sequence)
    )
    return (
        head
        + number
        + _text(claim.service_id, "service id")
        + _text(claim.terminal_id, "terminal id")
    )


def _usual_number(terminal_id: str, day: dt.date, sequence: int) -> str:
    # kiosk/receipt_numbers.py: terminal, date, sequence of the day
    return f"{terminal_id}-{day:%Y%m%d}-{sequence:04d}"


def _sequence_of(claim: ReceiptClaim) -> int | None:
    """The day's sequence when the receipt number is the usual one of this terminal on the
    receipt's own day: then only the sequence is carried (two bytes instead of ~18)."""
    tail = claim.receipt_number.rpartition("-")[2]
    if not tail.isascii() or not tail.isdigit() or len(tail) < 4:
        return None
    sequence = int(tail)
    day = claim.issued_at.date()
    if sequence > 0xFFFF or _usual_number(claim.terminal_id, day, sequence) != claim.receipt_number:
        return None
    return sequence


def _text(value: str, name: str) -> bytes:
    data = value.encode("utf-8")
    if not data or len(data) > MAX_FIELD_BYTES:
        raise ValueError(f"the {name} must be 1 to {MAX_FIELD_BYTES} bytes")
    return bytes([len(data)]) + data


def _claim(fields: bytes) -> ReceiptClaim:
    malformed = ReceiptTokenError.MALFORMED
    version, submission, seconds, quarters = _HEAD.unpack_from(fields)
    if version != FORMAT_VERSION:
        raise ReceiptTokenError(malformed, f"format {version} is not {FORMAT_VERSION}")
    texts: list[str] = []
    at = _HEAD.size
    sequence: int | None = None
    if len(fields) >= at + _SHORT_NUMBER.size and fields[at] == 0:
        sequence = _SHORT_NUMBER.unpack_from(fields, at)[1]
        texts.append("")
        at += _SHORT_NUMBER.size
    while len(texts) < 3:
        if at >= len(fields):
            raise ReceiptTokenError(malformed, "ends inside its fields")
        size = fields[at]
        chunk = fields[at + 1 : at + 1 + size]
        if size == 0 or len(chunk) != size:
            raise ReceiptTokenError(malformed, "a field is empty or cut short")
        try:
            texts.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            raise ReceiptTokenError(malformed, "a field is not UTF-8") from None
        at += 1 + size
    if at != len(fields):
        raise ReceiptTokenError(malformed, "bytes after the last field")
    if abs(quarters) > _MAX_QUARTERS:
        raise ReceiptTokenError(malformed, "the UTC offset is out of range")
    zone = dt.timezone(dt.timedelta(seconds=quarters * _QUARTER_HOUR_S))
    try:
        issued_at = dt.datetime.fromtimestamp(int.from_bytes(seconds, "big"), zone)
    except (OverflowError, OSError, ValueError):
        raise ReceiptTokenError(malformed, "the time is out of range") from None
    if sequence is not None:
        texts[0] = _usual_number(texts[2], issued_at.date(), sequence)
    return ReceiptClaim(
        receipt_number=texts[0],
        submission_id=str(uuid.UUID(bytes=submission)),
        service_id=texts[1],
        issued_at=issued_at,
        terminal_id=texts[2],
    )


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _unb32(token: object) -> bytes:
    malformed = ReceiptTokenError.MALFORMED
    if not isinstance(token, str) or not token:
        raise ReceiptTokenError(malformed, "no token")
    if len(token) > MAX_TOKEN_CHARS or not _BASE32.fullmatch(token):
        raise ReceiptTokenError(malformed, "not upper-case base32 of a sensible length")
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        raise ReceiptTokenError(malformed, "not base32") from None
    if _b32(raw) != token:  # unused low bits set, or a length no encoder makes
        raise ReceiptTokenError(malformed, "not the canonical spelling")
    return raw
