"""Outbox failures as codes the application turns into messages; nothing here is translated."""

from __future__ import annotations

import errno
import sqlite3


class OutboxError(Exception):
    """Base of every outbox failure; `code` is stable and meant for mapping to a message."""

    code = "outbox_error"


class StorageError(OutboxError):
    """The disk or the database refused to store or read (I/O error, read-only, locked too long)."""

    code = "storage_error"


class OutboxFullError(StorageError):
    """No space left: the submission could not be saved."""

    code = "storage_full"


class OutboxCorruptError(OutboxError):
    """The database file is not a database or is damaged."""

    code = "corrupt"


class WrongKeyError(OutboxError):
    """The key does not open this outbox (another terminal's key, or a replaced key file)."""

    code = "wrong_key"


class KeyFileError(OutboxError):
    """The key file cannot be read, written or has the wrong size."""

    code = "key_file"


class KeyringUnavailableError(KeyFileError):
    """The OS keyring failed or did not answer in time, or is required and there is none."""

    code = "keyring_unavailable"


class KeyringKeyInvalidError(KeyFileError):
    """The keyring holds an entry for this outbox that is not a key of the right size."""

    code = "keyring_key_invalid"


class KeyStoreConflictError(KeyFileError):
    """The keyring is required but a key file exists: using the keyring would strand the queue."""

    code = "key_store_conflict"


class OutboxLockedError(OutboxError):
    """Another process has this outbox open (a terminal already running, or a recovery)."""

    code = "outbox_locked"


class SalvageSourceError(OutboxError):
    """The file given for recovery is missing, not an outbox, or the live outbox itself."""

    code = "salvage_source"


class SchemaTooNewError(OutboxError):
    """The database was written by a newer version of the client."""

    code = "schema_too_new"


class UnknownItemError(OutboxError):
    """No outbox row has this id."""

    code = "unknown_item"


class DuplicateItemError(OutboxError):
    """A row with this id exists already."""

    code = "duplicate_item"


class InvalidTransitionError(OutboxError):
    """The row's state does not allow the requested change."""

    code = "invalid_transition"


class AttachmentLimitError(OutboxError):
    """The attachments break one of the outbox's limits; nothing was stored.

    limit and actual are in the unit of the limit broken (bytes, or files for the count).
    """

    code = "attachment_limit"

    def __init__(self, message: str, *, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


class AttachmentTooLargeError(AttachmentLimitError):
    """One attachment is larger than a single file may be."""

    code = "attachment_too_large"


class AttachmentsTooLargeError(AttachmentLimitError):
    """The attachments of one submission add up to more than a submission may carry."""

    code = "attachments_too_large"


class TooManyAttachmentsError(AttachmentLimitError):
    """More files than one submission may carry."""

    code = "too_many_attachments"


_FULL_MARKERS = ("database or disk is full", "disk is full")
_CORRUPT_MARKERS = ("file is not a database", "malformed", "file is encrypted")


def classify(exc: BaseException) -> OutboxError:
    """Map a sqlite3 or OS error to the outbox hierarchy (the original stays as __cause__)."""
    if isinstance(exc, OutboxError):
        return exc
    text = str(exc).lower()
    result: OutboxError
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        result = OutboxFullError(text) if full else StorageError(text)
    elif isinstance(exc, sqlite3.Error):
        extended = getattr(exc, "sqlite_errorcode", None)
        code = extended & 0xFF if isinstance(extended, int) else None  # primary result code
        if code == sqlite3.SQLITE_FULL or any(m in text for m in _FULL_MARKERS):
            result = OutboxFullError(text)
        elif code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or any(
            m in text for m in _CORRUPT_MARKERS
        ):
            result = OutboxCorruptError(text)
        else:
            result = StorageError(text)
    else:
        result = OutboxError(text)
    return result
