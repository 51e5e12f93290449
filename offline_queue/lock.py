"""One process per outbox: an exclusive flock on <outbox>.lock, held while the outbox is open.

Two processes on one outbox would each return the other's in-flight rows to 'queued' at start and
send them twice. The lock is taken before SQLite or the write-ahead-log inspection touches the
database, and held across setting a damaged file aside, so a second terminal can neither read a
log that is being written nor rename a live database.

flock belongs to an open file, so the operating system drops it when the process dies, however
it dies: a lock file left by a killed process locks nothing. Outbox objects of one process on the
same file share the process's lock (counted), so tools and tests may open a second one; a clean
release by the last of them deletes the lock file.

Deleting the file on release is safe because every acquirer checks, after flock succeeds, that
the name still leads to the file it locked; one that locked a file deleted meanwhile tries again.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from offline_queue.errors import OutboxLockedError, classify
from offline_queue.files import PRIVATE_FILE

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
_ATTEMPTS = 50  # each retry means another process deleted the file between our open and flock


@dataclass
class _Held:
    fd: int
    path: Path
    count: int  # how many OutboxLock shares of this process are open


_registry_lock = threading.Lock()
_held: dict[tuple[int, int], _Held] = {}  # by the lock file's (device, inode)


def lock_path(outbox_path: Path) -> Path:
    return outbox_path.with_name(outbox_path.name + LOCK_SUFFIX)


class OutboxLock:
    """A share of this process's lock on one outbox; release() once (later calls do nothing)."""

    def __init__(self, key: tuple[int, int] | None, path: Path) -> None:
        self._key = key
        self.path = path
        self._released = False

    @classmethod
    def acquire(cls, outbox_path: Path) -> OutboxLock:
        """Lock the outbox at outbox_path for this process; OutboxLockedError when another
        process holds it."""
        path = lock_path(Path(outbox_path))
        if sys.platform == "win32":  # no flock; a service hall runs one client per Windows seat
            log.warning("outbox %s: no process lock on this system", outbox_path)
            return cls(None, path)
        with _registry_lock:
            for _ in range(_ATTEMPTS):
                key = _lock_once(path)
                if key is not None:
                    return cls(key, path)
        raise OutboxLockedError(f"the lock file {path} kept being replaced; try again")

    def release(self) -> None:
        if self._released or self._key is None:
            self._released = True
            return
        self._released = True
        with _registry_lock:
            held = _held[self._key]
            held.count -= 1
            if held.count:
                return
            del _held[self._key]
            # Deleted while still locked, so nobody can lock this file and then find it gone
            # without noticing (acquirers compare the name's file with the one they locked).
            try:
                os.unlink(held.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("outbox lock file %s not removed: %s", held.path, exc.strerror)
            os.close(held.fd)  # drops the flock


def _lock_once(path: Path) -> tuple[int, int] | None:
    """Lock path and register it; None when the file was replaced and a retry is needed.
    Runs under _registry_lock."""
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except OSError as exc:  # a full disk or a read-only folder: the outbox's own codes
        raise classify(exc) from exc
    keep = False
    try:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        held = _held.get(key)
        if held is not None:  # this process holds it already
            held.count += 1
            return key
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutboxLockedError(
                f"another process has the outbox open (lock {path}{_holder(fd)})"
            ) from None
        except OSError as exc:
            # A file system without locks (some network mounts): running unguarded beats not
            # taking submissions at all, and the log says why.
            log.warning("outbox lock %s unavailable (%s); running without it", path, exc.strerror)
        try:
            now = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if (now.st_dev, now.st_ino) != key:
            return None
        _record_holder(fd)
        _held[key] = _Held(fd, path, 1)
        keep = True
        return key
    finally:
        if not keep:
            os.close(fd)


def _record_holder(fd: int) -> None:
    """Write our process id into the lock file, so a refused opener can say who holds it."""
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:  # only a courtesy for the message; the lock itself is held
        log.info("outbox lock: holder not recorded (%s)", exc.strerror)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f", held by process {text}" if text.isdigit() else ""
