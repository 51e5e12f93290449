"""The platform's own staff: one bearer token opens the back-office routes.

Status changes and the list of help requests are for the staff who run the platform, not for
whoever shares the hall's network. They carry `Authorization: Bearer <token>`; the platform keeps
only the token's SHA-256 and compares digests in constant time. The token is a random 256-bit
value: given by the operator (an environment variable or a file), or made on the first start
into a private file beside the database and read from there afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "REFPLATFORM_BACK_OFFICE_TOKEN"
FILE_NAME = "back-office-token"
MIN_TOKEN_CHARS = 32  # a random token, not a password someone chose
_MAX_TOKEN_FILE = 4096

# How the OpenAPI document names the credential, and the challenge a refusal carries.
SECURITY_SCHEME_NAME = "backOffice"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "the back-office token of the platform's staff (docs/api.md)",
}
CHALLENGE = 'Bearer realm="back office"'
CHALLENGE_INVALID = CHALLENGE + ', error="invalid_token"'


class BackOfficeTokenError(RuntimeError):
    """The configured token cannot be used; the message says why."""


def new_token() -> str:
    """A fresh random token: 256 bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def checked_token(token: str, source: str) -> str:
    """token without surrounding white space, or BackOfficeTokenError naming source."""
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS or not token.isprintable() or " " in token:
        raise BackOfficeTokenError(
            f"the back-office token from {source} must be at least {MIN_TOKEN_CHARS} printable"
            " characters without spaces (e.g. python -c 'import secrets;"
            " print(secrets.token_urlsafe(32))')"
        )
    return token


class BackOffice:
    """Tells the platform's staff from everyone else by the bearer token they present."""

    def __init__(self, token: str) -> None:
        self._digest = _digest(checked_token(token, "the caller"))

    def admits(self, authorization: str | None) -> bool | None:
        """True for the right token, False for another, None when there is no bearer token."""
        if authorization is None:
            return None
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        return hmac.compare_digest(_digest(presented.strip()), self._digest)

    def __repr__(self) -> str:
        return "BackOffice(<token hidden>)"


def read_token_file(path: Path) -> str:
    """The token kept in path; a file others may read is used but warned about."""
    try:
        with path.open("rb") as handle:
            found = os.fstat(handle.fileno())
            raw = handle.read(_MAX_TOKEN_FILE + 1)
    except OSError as exc:
        raise BackOfficeTokenError(f"cannot read the back-office token file {path}: {exc}") from exc
    if len(raw) > _MAX_TOKEN_FILE:
        raise BackOfficeTokenError(f"{path} is too large to be a back-office token file")
    if stat.S_IMODE(found.st_mode) & 0o077:
        log.warning("%s can be read by others than its owner: chmod 600 it", path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BackOfficeTokenError(f"{path} is not a text file") from exc
    return checked_token(text, str(path))


def default_token_file(db_path: Path) -> Path:
    """Where a token made on the first start is kept: beside the database."""
    return Path(db_path).resolve().parent / FILE_NAME


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token kept in path, made there (0600) first when there is none; and whether it was
    made now. The file appears whole or not at all, so a start cut short leaves no empty one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        return read_token_file(path), False
    token = new_token()
    try:
        fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    except OSError as exc:
        raise BackOfficeTokenError(f"cannot create {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write((token + "\n").encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        os.link(scratch, path)  # fails when another start made it first
    except FileExistsError:
        return read_token_file(path), False
    except OSError as exc:
        raise BackOfficeTokenError(f"cannot write {path}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
    return token, True


def configured_token(env_value: str | None, token_file: Path | None, db_path: Path) -> str:
    """The token as the operator set it up: in the environment variable ENVIRONMENT_VARIABLE
    or in a file named on the command line (not both), else the one kept beside the database,
    made on the first start. The log says where it comes from, never what it is."""
    if env_value is not None and token_file is not None:
        raise BackOfficeTokenError(
            f"the back-office token is given twice, in {ENVIRONMENT_VARIABLE} and in a file;"
            " give one"
        )
    if env_value is not None:
        log.info("back-office token: from the environment variable %s", ENVIRONMENT_VARIABLE)
        return checked_token(env_value, ENVIRONMENT_VARIABLE)
    if token_file is not None:
        log.info("back-office token: from %s", token_file)
        return read_token_file(token_file)
    path = default_token_file(db_path)
    token, made = load_or_create_token(path)
    if made:
        log.warning("back-office token: made a new one in %s (readable by this user only)", path)
    else:
        log.info("back-office token: from %s", path)
    return token
