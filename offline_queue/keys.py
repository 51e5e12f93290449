"""The outbox key: 32 random bytes kept outside the database, in the OS keyring or a 0600 file.

Where the key lives is decided once per terminal and then never changes by itself: a key already
in the file keeps being used, because moving it would strand the submissions it protects. A new
terminal with a working keyring (Secret Service, Windows Credential Locker, macOS Keychain) keeps
the key there, off the data partition; one without falls back to the key file. Config can pin
either store.

The keyring is reached over D-Bus or a platform API that can block (a locked collection waiting
for a prompt, a bus that is gone), so every keyring call runs on a daemon thread with a deadline.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from offline_queue.errors import (
    KeyFileError,
    KeyringKeyInvalidError,
    KeyringUnavailableError,
    KeyStoreConflictError,
)
from offline_queue.files import fsync_dir

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

KEY_SIZE = 32  # AES-256
_FILE_MODE = 0o600
KEYRING_SERVICE = "hall-terminal outbox key"
KEYRING_TIMEOUT_S = 5.0

_T = TypeVar("_T")


class KeyStore(StrEnum):
    """Where a terminal's outbox key may live (the config's choice)."""

    AUTO = "auto"  # the existing key file, else a usable keyring, else a new key file
    FILE = "file"  # always the key file
    KEYRING = "keyring"  # always the keyring; an error when there is none


class KeySource(StrEnum):
    """Where the key in use came from."""

    FILE = "file"
    KEYRING = "keyring"


@dataclass(frozen=True, slots=True)
class OutboxKey:
    key: bytes = field(repr=False)
    source: KeySource
    location: str  # the key file's path or the keyring entry's name, for logs and staff


def load_outbox_key(
    outbox_path: Path,
    key_file: Path,
    store: KeyStore | str = KeyStore.AUTO,
    *,
    backend: KeyringBackend | None = None,
    timeout_s: float = KEYRING_TIMEOUT_S,
    service: str = KEYRING_SERVICE,
) -> OutboxKey:
    """Return the key for the outbox at outbox_path, creating and storing it on first use.

    backend is the keyring to use; None means the one the keyring library picks for this
    machine. Raises a KeyFileError (or subclass) with a stable code on every failure.
    """
    policy = KeyStore(store)
    if policy is KeyStore.FILE:
        return OutboxKey(load_or_create_key(key_file), KeySource.FILE, str(key_file))
    try:
        key = _read_key(key_file)
    except FileNotFoundError:
        pass
    else:
        if policy is KeyStore.KEYRING:
            raise KeyStoreConflictError(
                f"the keyring is required but the outbox key is in {key_file}"
            )
        return OutboxKey(key, KeySource.FILE, str(key_file))
    username = keyring_username(outbox_path)
    found = _bounded(lambda: _keyring_load_or_create(backend, service, username), timeout_s)
    if found is not None:
        return OutboxKey(found, KeySource.KEYRING, f"{service} / {username}")
    if policy is KeyStore.KEYRING:
        raise KeyringUnavailableError("the keyring is required but this machine has none")
    return OutboxKey(load_or_create_key(key_file), KeySource.FILE, str(key_file))


def keyring_username(outbox_path: Path) -> str:
    """The keyring entry's user name: the outbox file's absolute path, one entry per outbox."""
    return str(Path(outbox_path).resolve())


def usable_keyring(backend: KeyringBackend) -> bool:
    """True for a backend that really protects secrets: not keyring's fail or null stand-ins, and
    not a plaintext file store (keyrings.alt's sit below priority 1; OS keyrings rank 4.9-5)."""
    from keyring.backends import fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    try:
        return float(backend.priority) >= 1
    except Exception:  # a backend signals "not on this machine" by raising from priority
        return False


def _keyring_load_or_create(
    backend: KeyringBackend | None, service: str, username: str
) -> bytes | None:
    """Runs on the keyring thread. None when there is no usable keyring."""
    import keyring

    try:
        chosen = keyring.get_keyring() if backend is None else backend
    except Exception as exc:  # a broken keyring config: the key may be in there, do not guess
        raise KeyringUnavailableError(f"the keyring cannot be set up: {exc}") from exc
    if not usable_keyring(chosen):
        return None
    try:
        stored = chosen.get_password(service, username)
        if stored is not None:
            return _decode(stored)
        key = secrets.token_bytes(KEY_SIZE)
        encoded = base64.b64encode(key).decode("ascii")
        chosen.set_password(service, username, encoded)
        # Some backends accept a write and keep nothing; a key that is not kept would make
        # every queued submission unreadable after the next restart.
        if chosen.get_password(service, username) != encoded:
            raise KeyringUnavailableError(f"the keyring did not keep the key for {username}")
    except (KeyringKeyInvalidError, KeyringUnavailableError):
        raise
    except Exception as exc:  # backends raise their own types (D-Bus, Win32, keyring.errors)
        raise KeyringUnavailableError(
            f"keyring {type(chosen).__name__} failed: {type(exc).__name__}: {exc}"
        ) from exc
    log.info("outbox key created in the keyring (%s)", type(chosen).__name__)
    return key


def _decode(stored: str) -> bytes:
    try:
        key = base64.b64decode(stored.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise KeyringKeyInvalidError("the keyring entry for the outbox is not base64") from None
    if len(key) != KEY_SIZE:
        raise KeyringKeyInvalidError(
            f"the keyring entry for the outbox holds {len(key)} bytes, expected {KEY_SIZE}"
        )
    return key


def _bounded(call: Callable[[], _T], timeout_s: float) -> _T:
    """Run call on a daemon thread; give up after timeout_s (the thread is left to finish).

    A daemon thread, not an executor: a call stuck in D-Bus must not hold up interpreter exit.
    """
    results: list[_T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="outbox-keyring", daemon=True).start()
    if not done.wait(timeout_s):
        raise KeyringUnavailableError(f"the keyring did not answer within {timeout_s:g} s")
    if errors:
        raise errors[0]
    return results[0]


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
    got there first, so no reader ever sees a half-written key file. The temporary file goes
    whatever happens, so a full disk leaves no empty or partial key behind.
    """
    folder = key_file.parent
    tmp = folder / f".{key_file.name}.{secrets.token_hex(8)}.tmp"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                os.fchmod(fd, _FILE_MODE)  # the umask may have narrowed it; 0600 exactly
                written = os.write(fd, secrets.token_bytes(KEY_SIZE))
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
        fsync_dir(folder)
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {key_file}: {exc.strerror}") from exc

