"""Bundles: the waiting submissions of a village service point that no network reaches, carried on
removable media to a hall terminal that uploads them.

The village terminal writes its queued submissions into one file exactly as its outbox keeps
them, each already sealed to the platform's key ({"submission_id", "sealed": envelope}), with
metadata that names nobody: the format, the bundle's id, the village terminal's id, when it was
made, and the public key it was signed with. The whole is signed with the village terminal's
enrolled Ed25519 key over kiosk.trust.canonical_json of everything but the signature.

Nothing personal is readable in a bundle: only the platform's sealing key opens an item, and an
item sealed to one submission id does not open as another. A row that is not sealed (queued
before the terminal sealed its submissions) is never written to a bundle; it waits to go online.
A lost stick therefore exposes ids and counts, nothing about any citizen.

Exporting leaves the rows queued in the village outbox: they may still go online later, and the
platform takes each submission id once, so a double delivery is harmless. Importing checks the
file (size, format, signature against the key it carries: any edited byte is refused) and queues
the bundle as one outbox row of kind "bundle" whose id is the bundle's id, so the same file
imported twice is noticed and ignored. The platform checks the signature again, with the key it
enrolled the village terminal with, never with the key in the file (refplatform/bundles.py).

Every export and import, done or refused, is one entry in the terminal's audit log
("bundle_exported", "bundle_imported") with the bundle's id when it is known, how many
submissions it holds, and the outcome as a code; never anything about the people in it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.audit_log import AuditLog, open_audit_log
from kiosk.config import Config
from kiosk.errors import UserFacingError, message_for
from kiosk.i18n import N_, _
from kiosk.trust import canonical_json, key_id, public_key_b64, raw_public_bytes
from offline_queue.errors import DuplicateItemError, OutboxError, OutboxLockedError
from offline_queue.files import write_private_atomically
from offline_queue.keys import load_outbox_key
from offline_queue.outbox import (
    Outbox,
    new_item_id,
)

log = logging.getLogger(__name__)

FORMAT: Final = "hall-bundle-v1"
BUNDLE_KIND: Final = "bundle"
SUBMISSION_KIND: Final = "submission"
SIGNATURE_MEMBER: Final = "signature"
SIGNATURE_ALG: Final = "Ed25519"
MIB: Final = 1024 * 1024
# A bundle is read whole, on the terminal and on the platform: these bound both. Sealed
# submissions without files are about a kilobyte each; ones with photographed materials inside
# can be megabytes, so a bundle stops short of the cap and the rest waits for the next one.
MAX_BUNDLE_BYTES: Final = 64 * MIB
MAX_BUNDLE_ITEMS: Final = 10_000

_FIELDS: Final = frozenset(
    {
        "format",
        "bundle_id",
        "terminal_id",
        "created_at",
        "items",
        "signer_public_key",
        SIGNATURE_MEMBER,
    }
)
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
_TERMINAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")  # as the platform enrols them
_SEALED_FIELDS: Final = frozenset({"submission_id", "sealed"})
_ITEM_FIELDS: Final = frozenset({"submission_id", "payload"})
_ITEM_OVERHEAD = 64  # bytes of JSON around one item's id and payload in the file
_CLAIM_CHUNK = 500


class BundleError(UserFacingError):
    """A bundle that cannot be made or taken; code says why in machine terms."""

    def __init__(self, message: str, /, *, code: str, **params: object) -> None:
        super().__init__(message, **params)
        self.code = code
        # What is known of the bundle when it was refused (for its audit entry).
        self.bundle_id: str | None = None
        self.count: int | None = None


UNREADABLE: Final = "bundle_unreadable"  # not there, not a file, or larger than the cap
MALFORMED: Final = "bundle_invalid"  # not a bundle of this format
BAD_SIGNATURE: Final = "bundle_signature_invalid"  # the bytes were changed after signing
NOTHING_TO_EXPORT: Final = "bundle_empty"
WRITE_FAILED: Final = "bundle_write_failed"

_MESSAGES: Final = {
    UNREADABLE: N_("The bundle file could not be read. Check the USB stick and try again."),
    MALFORMED: N_(
        "This file is not a bundle of waiting applications, or it is damaged. Nothing was imported."
    ),
    BAD_SIGNATURE: N_(
        "This bundle has been changed since the village terminal made it, so it cannot be "
        "trusted. Nothing was imported; ask the village service point for a new one."
    ),
    NOTHING_TO_EXPORT: N_("No applications are waiting to upload, so no bundle was written."),
    WRITE_FAILED: N_(
        "The bundle could not be written to the USB stick. Check that it is inserted and has "
        "room, then try again. The applications are still waiting on this terminal."
    ),
}


# -- the audit log ------------------------------------------------------------------------------

AUDIT_EXPORTED: Final = "bundle_exported"
AUDIT_IMPORTED: Final = "bundle_imported"
# The outcomes an entry names besides a BundleError's or an OutboxError's code.
EXPORTED: Final = "exported"
IMPORTED: Final = "imported"
ALREADY_IMPORTED: Final = "already_imported"


class AuditSink(Protocol):
    """Where exports and imports are recorded (kiosk.audit_log.AuditLog)."""

    def append(
        self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None
    ) -> object: ...


def _record(
    audit: AuditSink | None, kind: str, result: str, bundle_id: str | None, count: int | None
) -> None:
    """One audit entry; a bundle id that is not a UUID (a file made elsewhere) is left out
    rather than kept as the file spells it. A failure to record is logged: the bundle's own
    outcome stands."""
    if audit is None:
        return
    details: dict[str, str | int] = {"result": result}
    if bundle_id is not None and _is_uuid(bundle_id):
        details["bundle_id"] = bundle_id
    if count is not None:
        details["count"] = count
    try:
        audit.append(kind, "", details)
    except (ValueError, OSError, sqlite3.Error) as exc:
        log.error("the audit entry for a bundle was not written: %s", type(exc).__name__)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _error(code: str, detail: str) -> BundleError:
    log.warning("bundle refused: %s (%s)", code, detail)
    return BundleError(_MESSAGES[code], code=code)


@dataclass(frozen=True)
class BundleItem:
    submission_id: str
    payload: str  # the outbox's JSON, as stored: {"submission_id", "sealed": envelope}


@dataclass(frozen=True)
class Bundle:
    """A bundle whose shape has been checked (its signature: verify_bundle)."""

    bundle_id: str
    terminal_id: str
    created_at: str
    items: tuple[BundleItem, ...]
    signer_public_key: str
    doc: Mapping[str, Any]  # as read: what the signature covers

    @property
    def submission_ids(self) -> tuple[str, ...]:
        return tuple(item.submission_id for item in self.items)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    bundle_id: str
    written: int
    skipped: int  # waiting rows not written: not sealed, or past the bundle's size cap


@dataclass(frozen=True)
class ImportResult:
    bundle_id: str
    terminal_id: str
    items: int
    already_imported: bool


# -- the signed document ----------------------------------------------------------------------


def signed_bytes(doc: Mapping[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of every member but the signature."""
    return canonical_json({k: v for k, v in doc.items() if k != SIGNATURE_MEMBER})


def sign_bundle(doc: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """doc (without a signature) with its signer_public_key set and its signature added."""
    raw = raw_public_bytes(key.public_key())
    unsigned = {k: v for k, v in doc.items() if k != SIGNATURE_MEMBER}
    unsigned["signer_public_key"] = public_key_b64(key.public_key())
    value = base64.b64encode(key.sign(signed_bytes(unsigned))).decode("ascii")
    return {
        **unsigned,
        SIGNATURE_MEMBER: {"alg": SIGNATURE_ALG, "key_id": key_id(raw), "value": value},
    }


def verify_bundle(bundle: Bundle, public_key: Ed25519PublicKey) -> bool:
    """True when the bundle's signature verifies with public_key (the caller chooses the key)."""
    signature = bundle.doc.get(SIGNATURE_MEMBER)
    if not isinstance(signature, Mapping) or signature.get("alg") != SIGNATURE_ALG:
        return False
    value = signature.get("value")
    if not isinstance(value, str):
        return False
    try:
        raw = base64.b64decode(value, validate=True)
        public_key.verify(raw, signed_bytes(bundle.doc))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check_bundle(doc: object) -> Bundle:
    """The bundle in a parsed document, its shape checked; BundleError(MALFORMED) otherwise.

    Each item must be a sealed submission for its own id: a bundle never carries anything in
    the clear, and the platform refuses an item that does not open for its id anyway.
    """
    if not isinstance(doc, dict) or set(doc) != _FIELDS:
        raise _error(MALFORMED, "members")
    if doc["format"] != FORMAT:
        raise _error(MALFORMED, "format")
    bundle_id, terminal_id, created_at = doc["bundle_id"], doc["terminal_id"], doc["created_at"]
    if not isinstance(bundle_id, str) or not _ID.fullmatch(bundle_id):
        raise _error(MALFORMED, "bundle_id")
    if not isinstance(terminal_id, str) or not _TERMINAL_ID.fullmatch(terminal_id):
        raise _error(MALFORMED, "terminal_id")
    if not isinstance(created_at, str) or len(created_at) > 64:
        raise _error(MALFORMED, "created_at")
    signer = doc["signer_public_key"]
    try:
        if not isinstance(signer, str):
            raise ValueError("not text")
        Ed25519PublicKey.from_public_bytes(base64.b64decode(signer, validate=True))
    except (binascii.Error, ValueError):
        raise _error(MALFORMED, "signer_public_key") from None
    raw_items = doc["items"]
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_BUNDLE_ITEMS:
        raise _error(MALFORMED, "items")
    items: list[BundleItem] = []
    seen: set[str] = set()
    for raw in raw_items:
        item = _checked_item(raw)
        if item is None or item.submission_id in seen:
            raise _error(MALFORMED, "item")
        seen.add(item.submission_id)
        items.append(item)
    return Bundle(bundle_id, terminal_id, created_at, tuple(items), signer, doc)


def _checked_item(raw: object) -> BundleItem | None:
    if not isinstance(raw, dict) or set(raw) != _ITEM_FIELDS:
        return None
    submission_id, payload = raw["submission_id"], raw["payload"]
    if not isinstance(submission_id, str) or not _ID.fullmatch(submission_id):
        return None
    if not isinstance(payload, str) or not _is_sealed_for(payload, submission_id):
        return None
    return BundleItem(submission_id, payload)


def _is_sealed_for(payload: str | bytes, submission_id: str) -> bool:
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(body, dict)
        and set(body) == _SEALED_FIELDS
        and body["submission_id"] == submission_id
        and isinstance(body["sealed"], dict)
    )


def parse_bundle(data: bytes) -> Bundle:
    """The bundle in a file's bytes, shape and signature (against the key it carries) checked.

    That signature only proves the file is as its signer wrote it; whether the signer is the
    village terminal it names is the platform's check, with the key it enrolled.
    """
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _error(MALFORMED, "not JSON") from None
    bundle = check_bundle(doc)
    embedded = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(bundle.signer_public_key, validate=True)
    )
    if not verify_bundle(bundle, embedded):
        raise _error(BAD_SIGNATURE, "the signature does not verify")
    return bundle


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def read_bundle_file(path: Path, cap: int = MAX_BUNDLE_BYTES) -> bytes:
    """A bundle file's bytes, at most cap of them; BundleError(UNREADABLE) otherwise."""
    try:
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise _error(UNREADABLE, type(exc).__name__) from None
    if len(data) > cap:
        raise _error(UNREADABLE, f"larger than {cap} bytes")
    return data


# -- the village terminal: export --------------------------------------------------------------


def export_bundle(
    outbox: Outbox,
    key: Ed25519PrivateKey,
    terminal_id: str,
    path: Path,
    *,
    clock: Callable[[], float] = time.time,
    max_bytes: int = MAX_BUNDLE_BYTES,
    audit: AuditSink | None = None,
) -> ExportResult:
    """Write the waiting submissions, oldest first, to a bundle at path (0600, atomically).

    The rows stay queued here. BundleError(NOTHING_TO_EXPORT) when none can go in a bundle,
    BundleError(WRITE_FAILED) when the file cannot be written (nothing is left at path then).
    audit gets a "bundle_exported" entry either way.
    """
    try:
        result = _export(outbox, key, terminal_id, path, clock, max_bytes)
    except BundleError as exc:
        _record(audit, AUDIT_EXPORTED, exc.code, exc.bundle_id, exc.count)
        raise
    except OutboxError as exc:
        _record(audit, AUDIT_EXPORTED, exc.code, None, None)
        raise
    _record(audit, AUDIT_EXPORTED, EXPORTED, result.bundle_id, result.written)
    return result


def _export(  # noqa: PLR0917 - export_bundle's arguments, passed on
    outbox: Outbox,
    key: Ed25519PrivateKey,
    terminal_id: str,
    path: Path,
    clock: Callable[[], float],
    max_bytes: int,
) -> ExportResult:
    waiting = waiting_submissions(outbox)
    items: list[dict[str, str]] = []
    size = 1024  # the metadata and the signature
    skipped = 0
    for submission_id, payload in waiting:
        text = payload.decode("utf-8", errors="replace")
        if not _is_sealed_for(payload, submission_id):
            skipped += 1  # never in the clear on a stick: it waits to go online
            continue
        cost = len(submission_id) + len(payload) + _ITEM_OVERHEAD
        if len(items) >= MAX_BUNDLE_ITEMS or size + cost > max_bytes:
            skipped += 1
            continue
        size += cost
        items.append({"submission_id": submission_id, "payload": text})
    if not items:
        raise BundleError(_MESSAGES[NOTHING_TO_EXPORT], code=NOTHING_TO_EXPORT)
    created = dt.datetime.fromtimestamp(clock(), dt.UTC).isoformat(timespec="seconds")
    bundle_id = new_item_id()
    doc = sign_bundle(
        {
            "format": FORMAT,
            "bundle_id": bundle_id,
            "terminal_id": terminal_id,
            "created_at": created,
            "items": items,
        },
        key,
    )
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        # A stick refuses 0600 as often as not; the bundle is signed and its items sealed.
        write_private_atomically(path, data, narrow=False)
    except OSError as exc:
        log.error("bundle not written: %s", type(exc).__name__)
        failed = BundleError(_MESSAGES[WRITE_FAILED], code=WRITE_FAILED)
        failed.bundle_id, failed.count = bundle_id, len(items)
        raise failed from exc
    if skipped:
        log.warning("bundle %s: %d waiting submission(s) left out", bundle_id, skipped)
    log.info("bundle %s written with %d submission(s)", bundle_id, len(items))
    return ExportResult(path, bundle_id, len(items), skipped)


def waiting_submissions(outbox: Outbox) -> list[tuple[str, bytes]]:
    """(id, payload) of every queued submission, oldest first, read without touching the rows
    (they stay queued, their attempts and due times as they were). A sealed row carries its
    files inside its payload; a row with files apart is not sealed and is left out."""
    return outbox.waiting_payloads(SUBMISSION_KIND)


# -- the hall terminal: import -----------------------------------------------------------------


def import_bundle(outbox: Outbox, path: Path, *, audit: AuditSink | None = None) -> ImportResult:
    """Check the bundle at path and queue it as one row for the platform.

    BundleError when it is unreadable, malformed or altered (nothing is queued then). A bundle
    queued here before is not queued again: already_imported says so, and nothing changed.
    audit gets a "bundle_imported" entry either way.
    """
    try:
        result = _import(outbox, path, audit)
    except BundleError as exc:
        _record(audit, AUDIT_IMPORTED, exc.code, None, None)
        raise
    outcome = ALREADY_IMPORTED if result.already_imported else IMPORTED
    _record(audit, AUDIT_IMPORTED, outcome, result.bundle_id, result.items)
    return result


def _import(outbox: Outbox, path: Path, audit: AuditSink | None) -> ImportResult:
    data = read_bundle_file(path)
    bundle = parse_bundle(data)
    summary = {
        "kind": BUNDLE_KIND,
        "bundle_id": bundle.bundle_id,
        "terminal_id": bundle.terminal_id,
        "created_at": bundle.created_at,
        "items": len(bundle.items),
    }
    try:
        outbox.enqueue(
            BUNDLE_KIND,
            data,
            json.dumps(summary, ensure_ascii=False).encode("utf-8"),
            item_id=bundle.bundle_id,
        )
    except DuplicateItemError:
        log.info("bundle %s was imported before; ignored", bundle.bundle_id)
        return ImportResult(bundle.bundle_id, bundle.terminal_id, len(bundle.items), True)
    except OutboxError as exc:
        _record(audit, AUDIT_IMPORTED, exc.code, bundle.bundle_id, len(bundle.items))
        raise
    log.info(
        "bundle %s from terminal %s queued with %d submission(s)",
        bundle.bundle_id,
        bundle.terminal_id,
        len(bundle.items),
    )
    return ImportResult(bundle.bundle_id, bundle.terminal_id, len(bundle.items), False)


def bundle_submission_ids(payload: bytes) -> tuple[str, ...] | None:
    """The submission ids of a queued bundle row, in order; None when it is not a bundle."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    ids = [i.get("submission_id") if isinstance(i, dict) else None for i in items]
    if not ids or not all(isinstance(i, str) for i in ids):
        return None
    return tuple(str(i) for i in ids)


# -- the commands staff run --------------------------------------------------------------------

_QUEUE_BUSY = N_(
    "The bundle was not made or read: the terminal program is running and using its upload "
    "queue. Close it, then try again. (Code: {code})"
)
_QUEUE_FAILED = N_(
    "The bundle was not made or read: this terminal's upload queue could not be opened. Please "
    "ask staff for help. (Code: {code})"
)


def describe_export(result: ExportResult) -> str:
    text = _("{count} waiting application(s) were written to {path}.").format(
        count=result.written, path=result.path
    )
    if result.skipped:
        text += " " + _(
            "{count} could not go in this bundle and still wait on this terminal."
        ).format(count=result.skipped)
    return text


def describe_import(result: ImportResult) -> str:
    if result.already_imported:
        return _("This bundle was imported before; nothing was added.")
    return _(
        "{count} application(s) from terminal {terminal} will be uploaded with this "
        "terminal's queue."
    ).format(count=result.items, terminal=result.terminal_id)


def export_to(config: Config, path: Path) -> tuple[bool, str]:
    """--export-bundle, with the terminal stopped: (done, the sentence to print)."""
    from kiosk.terminal_auth import load_identity

    try:
        identity = load_identity(config.data_dir, config.platform_url)
    except UserFacingError as exc:
        return False, message_for(exc)  # no key: nothing to sign with, no audit log either
    with _command_audit(config, identity.key) as audit:
        try:
            outbox = _open_outbox(config)
        except OutboxError as exc:
            _record(audit, AUDIT_EXPORTED, exc.code, None, None)
            return False, _queue_failure(exc.code)
        with outbox:
            try:
                result = export_bundle(
                    outbox, identity.key, identity.terminal_id, path, audit=audit
                )
            except BundleError as exc:  # recorded by export_bundle, as below
                return False, message_for(exc)
            except OutboxError as exc:
                return False, _queue_failure(exc.code)
    return True, describe_export(result)


def import_from(config: Config, path: Path) -> tuple[bool, str]:
    """--import-bundle, with the terminal stopped: (done or already done, the sentence)."""
    from kiosk.terminal_auth import load_identity

    try:
        key: Ed25519PrivateKey | None = load_identity(config.data_dir, config.platform_url).key
    except UserFacingError:
        key = None  # a terminal not enrolled yet takes the bundle; it has no audit log to keep
    with _command_audit(config, key) as audit:
        try:
            outbox = _open_outbox(config)
        except OutboxError as exc:
            _record(audit, AUDIT_IMPORTED, exc.code, None, None)
            return False, _queue_failure(exc.code)
        with outbox:
            try:
                result = import_bundle(outbox, path, audit=audit)
            except BundleError as exc:  # recorded by import_bundle, as below
                return False, message_for(exc)
            except OutboxError as exc:
                return False, _queue_failure(exc.code)
    return True, describe_import(result)


@contextlib.contextmanager
def _command_audit(config: Config, key: Ed25519PrivateKey | None) -> Iterator[AuditLog | None]:
    """The terminal's audit log for a command's entries; None (logged) when there is no key or
    the log cannot be opened: the bundle command still does its work."""
    if key is None:
        log.warning("bundle command: the terminal is not enrolled; no audit entry is kept")
        yield None
        return
    try:
        audit = open_audit_log(config.data_dir, key)
    except (sqlite3.Error, OSError, ValueError) as exc:
        log.error("bundle command: the audit log cannot be opened (%s)", type(exc).__name__)
        yield None
        return
    try:
        yield audit
    finally:
        audit.close()


def _open_outbox(config: Config) -> Outbox:
    from kiosk.app import prepare_data_dir

    prepare_data_dir(config)
    key = load_outbox_key(config.outbox_path, config.key_path, config.outbox_key_store)
    return Outbox(config.outbox_path, key.key)


def _queue_failure(code: str) -> str:
    log.error("bundle command: the outbox could not be used (%s)", code)
    message = _QUEUE_BUSY if code == OutboxLockedError.code else _QUEUE_FAILED
    return _(message).format(code=code)
