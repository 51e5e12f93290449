"""Small file-system steps the outbox's durability and privacy rest on."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def fsync_dir(folder: Path) -> None:
    """Make creations and renames in folder durable: without it a power cut can undo them."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path) -> bool:
    """Create path empty with mode 0600 whatever the umask; False when it exists already.

    An existing file is not opened at all: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, SQLite's included.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have narrowed it; 0600 exactly
    finally:
        os.close(fd)
    return True


def narrow_mode(path: Path, allowed: int) -> bool:
    """Take away every permission bit of path outside allowed (by path: no descriptor opened).

    Returns True when the mode changed. A missing file or a symbolic link is left alone; a file
    that cannot be changed (another owner) is logged, not raised: refusing to start over a mode
    would strand the submissions the file holds.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False
    current = stat.S_IMODE(info.st_mode)
    if not current & ~allowed:
        return False
    try:
        os.chmod(path, current & allowed)
    except OSError as exc:
        log.warning("cannot narrow the mode of %s from %o: %s", path, current, exc.strerror)
        return False
    log.warning("%s had mode %o; narrowed to %o", path, current, current & allowed)
    return True


def write_private_atomically(path: Path, data: bytes, *, narrow: bool = True) -> None:
    """data at path, mode 0600: written beside it, fsync'd, renamed over it, the folder fsync'd.
    A reader sees the old file or the new one, never part of either.

    narrow=False: a file system that refuses to narrow modes (a FAT stick mounted for a user)
    is not an error; the caller's data is protected otherwise (signed, sealed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, PRIVATE_FILE)
    try:
        try:
            try:
                os.fchmod(fd, PRIVATE_FILE)  # the umask may have narrowed it; 0600 exactly
            except PermissionError:
                if narrow:
                    raise
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
