"""The outbox key: 32 random bytes in a 0600 file of its own, never inside the database.

An OS keyring (Secret Service, Windows DPAPI) would keep the key off the data partition; the file
is the portable baseline and the one the tests exercise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from offline_queue.errors import KeyFileError

log = logging.getLogger(__name__)

KEY_SIZE = 32  # AES-256
_FILE_MODE = 0o600


def load_or_create_key(key_file: Path) -> bytes:
    """Return the key stored in key_file, creating it (atomically, durably) on first use.

    A key file readable by group or others is narrowed to 0600 with a warning: refusing it would
    strand the queued submissions it protects.
    """
    try:
        return _read_key(key_file)
    except FileNotFoundError:
        pass
    _create_key(key_file)
    return _read_key(key_file)


def _read_key(key_file: Path) -> bytes:
    fd = os.open(key_file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file is not a regular file: {key_file}")
        if stat.S_IMODE(info.st_mode) & 0o077:
            log.warning(
                "outbox key file %s had mode %o; narrowing it to 0600",
                key_file,
                stat.S_IMODE(info.st_mode),
            )
            os.fchmod(fd, _FILE_MODE)
        data = os.read(fd, KEY_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {key_file}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if len(data) != KEY_SIZE:
        raise KeyFileError(f"key file {key_file} holds {len(data)} bytes, expected {KEY_SIZE}")
    return data


def _create_key(key_file: Path) -> None:
    """Write a fresh key under a temporary name, then link it into place.

    The link either creates the final name with the complete key or fails because another process
    got there first, so no reader ever sees a half-written key file.
    """
    folder = key_file.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{key_file.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)  # the umask may have narrowed it further; 0600 exactly
            key = secrets.token_bytes(KEY_SIZE)
            written = os.write(fd, key)
            if written != KEY_SIZE:
                raise KeyFileError(f"short write to {tmp}")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            log.info("outbox key file %s was created concurrently; using that one", key_file)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(folder)
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {key_file}: {exc.strerror}") from exc


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
