"""The platform's own keys: Ed25519 to sign the catalogue, X25519 for terminals to seal to.

Both are made on the first start in a private directory (0700, files 0600, PKCS#8 PEM) and read
afterwards. A key file that is there but unreadable is an error, never a reason to make a new key:
terminals pin these keys, and a new one would make them refuse the catalogue or seal to a key the
platform no longer has.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from kiosk.trust import (
    SIGNATURE_ALG,
    SIGNATURE_MEMBER,
    canonical_json,
    key_id,
    open_sealed,
    public_key_b64,
    raw_public_bytes,
)

log = logging.getLogger(__name__)

KEYS_DIR_NAME = "platform-keys"
SIGNING_FILE = "catalogue-signing.ed25519.pem"
SEALING_FILE = "submission-sealing.x25519.pem"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_MAX_KEY_FILE = 4096  # a PEM private key of either kind is about 120 bytes


class PlatformKeyError(RuntimeError):
    """The platform's key directory or a key in it cannot be used; the message says which."""


def default_keys_dir(db_path: Path) -> Path:
    """Where the keys live unless configured: beside the database."""
    return Path(db_path).resolve().parent / KEYS_DIR_NAME


class PlatformKeys:
    """The platform's signing and sealing keys, loaded from directory or made there."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        _private_dir(self.directory)
        signing_path = self.directory / SIGNING_FILE
        sealing_path = self.directory / SEALING_FILE
        present = [path.name for path in (signing_path, sealing_path) if os.path.lexists(path)]
        if len(present) == 1:
            # Half a key set is a lost key, not a first start: making the other one afresh would
            # strand every terminal that pinned it.
            raise PlatformKeyError(
                f"{self.directory} holds {present[0]} but not the other platform key; restore "
                "it from a backup, or remove the directory to start with new keys (terminals "
                "must then be enrolled again)"
            )
        if not present:
            _create(signing_path, Ed25519PrivateKey.generate())
            _create(sealing_path, X25519PrivateKey.generate())
            log.info("platform keys created in %s", self.directory)
        signing = _load(signing_path)
        if not isinstance(signing, Ed25519PrivateKey):
            raise _wrong_kind(signing_path, signing, "an Ed25519")
        sealing = _load(sealing_path)
        if not isinstance(sealing, X25519PrivateKey):
            raise _wrong_kind(sealing_path, sealing, "an X25519")
        self._signing = signing
        self._sealing = sealing
        self.signing_key_id = key_id(raw_public_bytes(self.signing_public_key))
        self.sealing_key_id = key_id(raw_public_bytes(self.sealing_public_key))

    def __repr__(self) -> str:
        return (
            f"PlatformKeys({str(self.directory)!r}, signing={self.signing_key_id}, "
            f"sealing={self.sealing_key_id})"
        )

    @property
    def signing_public_key(self) -> Ed25519PublicKey:
        return self._signing.public_key()

    @property
    def sealing_public_key(self) -> X25519PublicKey:
        return self._sealing.public_key()

    @property
    def signing_public_b64(self) -> str:
        """Standard base64 of the raw 32-byte Ed25519 public key."""
        return public_key_b64(self.signing_public_key)

    @property
    def sealing_public_b64(self) -> str:
        """Standard base64 of the raw 32-byte X25519 public key."""
        return public_key_b64(self.sealing_public_key)

    def sign_catalogue(self, catalogue: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of catalogue with its "signature" member (one it had already is replaced)."""
        body = {name: value for name, value in catalogue.items() if name != SIGNATURE_MEMBER}
        value = self._signing.sign(canonical_json(body))
        body[SIGNATURE_MEMBER] = {
            "alg": SIGNATURE_ALG,
            "key_id": self.signing_key_id,
            "value": base64.b64encode(value).decode("ascii"),
        }
        return body

    def open_sealed(self, envelope: Mapping[str, Any], context: bytes) -> bytes:
        """The plaintext of a body a terminal sealed to this platform; kiosk.trust.SealError
        when it is not one (malformed, to another key, altered, for another context)."""
        return open_sealed(envelope, self._sealing, context)


def _private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        info = os.stat(directory)
        if not stat.S_ISDIR(info.st_mode):
            raise PlatformKeyError(f"{directory} is not a directory")
        if stat.S_IMODE(info.st_mode) != _DIR_MODE:
            os.chmod(directory, _DIR_MODE)  # mkdir's mode passes through the umask
    except OSError as exc:
        raise PlatformKeyError(f"key directory {directory}: {exc.strerror or exc}") from exc


def _create(path: Path, key: Ed25519PrivateKey | X25519PrivateKey) -> None:
    """Write key to path atomically: all of it or nothing, and never over a file already there."""
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(tmp, flags, _FILE_MODE), "wb") as fh:
            os.fchmod(fh.fileno(), _FILE_MODE)  # exactly 0600, whatever the umask
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        # A link fails if another process made the key meanwhile; its key wins and is loaded.
        try:
            os.link(tmp, path)
        except FileExistsError:
            log.info("%s was created meanwhile by another start; using it", path.name)
        dir_fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise PlatformKeyError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _load(path: Path) -> PrivateKeyTypes:
    # A symbolic link is followed: keys may be provisioned as links to a secrets mount.
    try:
        with path.open("rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise PlatformKeyError(f"{path} is not a regular file")
            if stat.S_IMODE(info.st_mode) & ~_FILE_MODE:
                _narrow(fh.fileno(), path)
            data = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise PlatformKeyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_KEY_FILE:
        raise PlatformKeyError(f"{path} is not a platform key: larger than {_MAX_KEY_FILE} bytes")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PlatformKeyError(
            f"{path} is damaged or not a PEM private key; restore it from a backup (a new key "
            "would not be trusted by the enrolled terminals)"
        ) from exc
    return key


def _wrong_kind(path: Path, key: PrivateKeyTypes, wanted: str) -> PlatformKeyError:
    return PlatformKeyError(f"{path} holds a {type(key).__name__}, not {wanted} private key")


def _narrow(fd: int, path: Path) -> None:
    try:
        os.fchmod(fd, _FILE_MODE)
    except OSError as exc:  # a read-only mount: its owner decides, the key is still usable
        log.warning("%s is readable by others and cannot be narrowed: %s", path, exc.strerror)
    else:
        log.warning("%s was readable by others; narrowed to 0600", path)
