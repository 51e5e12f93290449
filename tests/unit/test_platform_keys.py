"""The platform's signing and sealing keys: made once, private, loaded the same, never replaced."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from kiosk.trust import (
    SealError,
    ed25519_public_from_b64,
    key_id,
    seal,
    signing_keys,
    verify_catalogue,
    x25519_public_from_b64,
)
from refplatform.keys import (
    KEYS_DIR_NAME,
    SEALING_FILE,
    SIGNING_FILE,
    PlatformKeyError,
    PlatformKeys,
    default_keys_dir,
)

CONTEXT = b"0190f3a2-7c1e-7b4a-9d6e-2f1a3b4c5d6e"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that narrows nothing: the modes must come from the code, not the environment."""
    before = os.umask(0)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_keys_are_made_once_in_a_private_directory(tmp_path: Path, open_umask: None) -> None:
    folder = tmp_path / "state" / KEYS_DIR_NAME
    keys = PlatformKeys(folder)
    assert sorted(path.name for path in folder.iterdir()) == sorted([SIGNING_FILE, SEALING_FILE])
    assert _mode(folder) == 0o700
    assert _mode(folder / SIGNING_FILE) == 0o600
    assert _mode(folder / SEALING_FILE) == 0o600
    assert (folder / SIGNING_FILE).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keys.signing_key_id != keys.sealing_key_id


def test_keys_load_again_the_same(tmp_path: Path) -> None:
    first = PlatformKeys(tmp_path / "keys")
    files = _snapshot(tmp_path / "keys")
    second = PlatformKeys(tmp_path / "keys")
    assert _snapshot(tmp_path / "keys") == files
    assert second.signing_public_b64 == first.signing_public_b64
    assert second.sealing_public_b64 == first.sealing_public_b64
    assert (second.signing_key_id, second.sealing_key_id) == (
        first.signing_key_id,
        first.sealing_key_id,
    )
    # Another directory is another platform.
    assert PlatformKeys(tmp_path / "other").signing_public_b64 != first.signing_public_b64


def test_public_keys_and_ids_as_they_travel(tmp_path: Path) -> None:
    keys = PlatformKeys(tmp_path / "keys")
    for text, named in [
        (keys.signing_public_b64, keys.signing_key_id),
        (keys.sealing_public_b64, keys.sealing_key_id),
    ]:
        raw = base64.b64decode(text, validate=True)
        assert len(raw) == 32
        assert named == key_id(raw)
    assert "PRIVATE" not in repr(keys)
    assert keys.signing_key_id in repr(keys)


def test_a_signed_catalogue_verifies_on_the_terminal(tmp_path: Path) -> None:
    keys = PlatformKeys(tmp_path / "keys")
    catalogue: dict[str, Any] = {"version": "7", "services": [{"id": "a", "name": {"en": "A"}}]}
    signed = keys.sign_catalogue(catalogue)
    assert "signature" not in catalogue  # the platform's own copy is not changed
    assert signed["signature"]["alg"] == "Ed25519"
    assert signed["signature"]["key_id"] == keys.signing_key_id
    trusted = signing_keys([ed25519_public_from_b64(keys.signing_public_b64)])
    assert verify_catalogue(signed, trusted) == catalogue
    # Signing a signed catalogue again replaces the signature rather than signing it.
    assert keys.sign_catalogue(signed) == signed


def test_a_body_sealed_to_the_platform_opens_there_only(tmp_path: Path) -> None:
    keys = PlatformKeys(tmp_path / "keys")
    recipient = x25519_public_from_b64(keys.sealing_public_b64)
    envelope = seal(b'{"answers": {}}', recipient, CONTEXT)
    assert keys.open_sealed(envelope, CONTEXT) == b'{"answers": {}}'
    with pytest.raises(SealError):
        PlatformKeys(tmp_path / "other").open_sealed(envelope, CONTEXT)
    with pytest.raises(SealError):
        keys.open_sealed(envelope, b"another-submission")


def _other_kind(path: Path) -> bytes:
    """The PEM of a valid key of the other kind, as if the files were swapped."""
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )


CORRUPTIONS = {
    "empty": lambda path: b"",
    "garbage": lambda path: os.urandom(100),
    "truncated": lambda path: path.read_bytes()[:60],
    "one changed letter": lambda path: path.read_bytes().replace(b"MC4CAQAw", b"MC4CAQBw"),
    "huge": lambda path: b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 1_000_000,
    "another kind of key": _other_kind,
}


@pytest.mark.parametrize("name", [SIGNING_FILE, SEALING_FILE])
@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_damaged_key_file_is_an_error_not_a_new_key(tmp_path: Path, name: str, how: str) -> None:
    folder = tmp_path / "keys"
    PlatformKeys(folder)
    target = folder / name
    if how == "another kind of key" and name == SIGNING_FILE:
        target.write_bytes((folder / SEALING_FILE).read_bytes())
    else:
        target.write_bytes(CORRUPTIONS[how](target))
    files = _snapshot(folder)
    with pytest.raises(PlatformKeyError, match=name):
        PlatformKeys(folder)
    assert _snapshot(folder) == files


@pytest.mark.parametrize("missing", [SIGNING_FILE, SEALING_FILE])
def test_half_a_key_set_is_an_error_not_a_new_key(tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "keys"
    PlatformKeys(folder)
    (folder / missing).unlink()
    files = _snapshot(folder)
    with pytest.raises(PlatformKeyError, match="restore"):
        PlatformKeys(folder)
    assert _snapshot(folder) == files


def test_wide_modes_are_narrowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "keys"
    first = PlatformKeys(folder)
    folder.chmod(0o755)
    (folder / SIGNING_FILE).chmod(0o644)
    again = PlatformKeys(folder)
    assert again.signing_key_id == first.signing_key_id
    assert _mode(folder) == 0o700
    assert _mode(folder / SIGNING_FILE) == 0o600
    assert "narrowed" in caplog.text


def test_a_key_path_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / SIGNING_FILE).mkdir()
    (folder / SEALING_FILE).mkdir()
    with pytest.raises(PlatformKeyError, match=SIGNING_FILE):
        PlatformKeys(folder)


def test_a_key_directory_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("not a directory")
    with pytest.raises(PlatformKeyError, match="keys"):
        PlatformKeys(tmp_path / "keys")


def test_the_default_directory_is_beside_the_database(tmp_path: Path) -> None:
    assert default_keys_dir(tmp_path / "platform.sqlite3") == tmp_path.resolve() / KEYS_DIR_NAME
