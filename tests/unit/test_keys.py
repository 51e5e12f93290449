"""Where the outbox key lives: the key file, a real keyring backend, and a keyring that fails."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.compat import properties

from offline_queue.errors import (
    KeyFileError,
    KeyringKeyInvalidError,
    KeyringUnavailableError,
    KeyStoreConflictError,
)
from offline_queue.keys import (
    KEY_SIZE,
    KEYRING_SERVICE,
    KeySource,
    KeyStore,
    keyring_username,
    load_or_create_key,
    load_outbox_key,
    usable_keyring,
)
from offline_queue.outbox import Outbox

REPO = Path(__file__).resolve().parents[2]


class MemoryKeyring(KeyringBackend):
    """A complete keyring backend holding its entries in a dict.

    keyring registers every backend class it sees, so this one declares itself unfit for this
    machine (priority raises) except while a test has installed it; otherwise the library could
    pick it as the process's default keyring for unrelated tests.
    """

    installed = False

    @properties.classproperty
    def priority(cls) -> float:
        if not MemoryKeyring.installed:
            raise RuntimeError("the in-memory keyring is installed only by tests")
        return 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls += 1
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls += 1
        del self.entries[(service, username)]


class LockedKeyring(MemoryKeyring):
    """A Secret Service whose collection stays locked (the unlock prompt was dismissed)."""

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class HangingKeyring(MemoryKeyring):
    """A keyring whose bus never answers until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.entered.set()
        self.release.wait(60)
        return super().get_password(service, username)


class ForgetfulKeyring(MemoryKeyring):
    """Accepts a secret and keeps nothing."""

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls += 1


@pytest.fixture
def installed() -> Iterator[None]:
    MemoryKeyring.installed = True
    yield
    MemoryKeyring.installed = False


@pytest.fixture
def memory(installed: None) -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    return data / "outbox.sqlite3", data / "outbox.key"


def test_a_new_terminal_with_a_keyring_keeps_the_key_there(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    first = load_outbox_key(outbox_path, key_file, backend=memory)
    assert first.source is KeySource.KEYRING
    assert not key_file.exists()
    assert list(key_file.parent.iterdir()) == []  # no key file, no temporary either
    stored = memory.entries[(KEYRING_SERVICE, str(outbox_path.resolve()))]
    assert base64.b64decode(stored, validate=True) == first.key
    assert len(first.key) == KEY_SIZE
    # The next start finds the same key, and it opens what the first one sealed.
    with Outbox(outbox_path, first.key) as box:
        item_id = box.enqueue("submission", b"payload", b"summary")
    again = load_outbox_key(outbox_path, key_file, backend=memory)
    assert again.key == first.key
    with Outbox(outbox_path, again.key) as box:
        item = box.claim_next()
        assert item is not None and (item.id, item.payload) == (item_id, b"payload")


def test_each_outbox_has_its_own_entry_and_a_relative_path_finds_it(
    tmp_path: Path, memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = load_outbox_key(tmp_path / "a" / "outbox.sqlite3", tmp_path / "a.key", backend=memory)
    two = load_outbox_key(tmp_path / "b" / "outbox.sqlite3", tmp_path / "b.key", backend=memory)
    assert one.key != two.key
    assert len(memory.entries) == 2
    monkeypatch.chdir(tmp_path)
    relative = Path("a/outbox.sqlite3")
    assert keyring_username(relative) == keyring_username(tmp_path / "a" / "outbox.sqlite3")
    assert load_outbox_key(relative, tmp_path / "a.key", backend=memory).key == one.key


def test_an_existing_key_file_keeps_being_used(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    from_file = load_or_create_key(key_file)
    loaded = load_outbox_key(outbox_path, key_file, backend=memory)
    assert (loaded.key, loaded.source, loaded.location) == (
        from_file,
        KeySource.FILE,
        str(key_file),
    )
    assert memory.calls == 0  # the keyring is not even asked
    assert memory.entries == {}


def test_a_broken_key_file_is_an_error_not_a_switch_to_the_keyring(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    key_file.write_bytes(b"short")
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError) as caught:
        load_outbox_key(outbox_path, key_file, backend=memory)
    assert caught.value.code == "key_file"
    assert memory.entries == {}


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_no_usable_keyring_means_a_0600_key_file(
    paths: tuple[Path, Path], backend: KeyringBackend
) -> None:
    outbox_path, key_file = paths
    assert not usable_keyring(backend)
    loaded = load_outbox_key(outbox_path, key_file, backend=backend)
    assert loaded.source is KeySource.FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() == loaded.key
    assert load_outbox_key(outbox_path, key_file, backend=backend).key == loaded.key


class PlaintextStore(MemoryKeyring):
    """Ranked like keyrings.alt's plaintext file store: it keeps secrets but protects nothing."""

    @properties.classproperty
    def priority(cls) -> float:
        if not MemoryKeyring.installed:
            raise RuntimeError("installed only by tests")
        return 0.5


def test_a_plaintext_keyring_is_not_trusted_with_the_key(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    store = PlaintextStore()
    assert usable_keyring(memory) and not usable_keyring(store)
    loaded = load_outbox_key(outbox_path, key_file, backend=store)
    assert loaded.source is KeySource.FILE
    assert store.entries == {}


def test_file_policy_never_asks_the_keyring(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    loaded = load_outbox_key(outbox_path, key_file, "file", backend=memory)
    assert loaded.source is KeySource.FILE
    assert key_file.read_bytes() == loaded.key
    assert memory.calls == 0


def test_keyring_policy_uses_the_keyring(paths: tuple[Path, Path], memory: MemoryKeyring) -> None:
    outbox_path, key_file = paths
    loaded = load_outbox_key(outbox_path, key_file, KeyStore.KEYRING, backend=memory)
    assert loaded.source is KeySource.KEYRING
    assert not key_file.exists()


def test_keyring_policy_without_a_keyring_is_an_error(paths: tuple[Path, Path]) -> None:
    outbox_path, key_file = paths
    with pytest.raises(KeyringUnavailableError) as caught:
        load_outbox_key(outbox_path, key_file, "keyring", backend=fail.Keyring())
    assert caught.value.code == "keyring_unavailable"
    assert isinstance(caught.value, KeyFileError)  # callers handling key errors see it too
    assert not key_file.exists()


def test_keyring_policy_with_a_key_file_refuses_to_strand_it(
    paths: tuple[Path, Path], memory: MemoryKeyring
) -> None:
    outbox_path, key_file = paths
    before = load_or_create_key(key_file)
    with pytest.raises(KeyStoreConflictError) as caught:
        load_outbox_key(outbox_path, key_file, "keyring", backend=memory)
    assert caught.value.code == "key_store_conflict"
    assert key_file.read_bytes() == before
    assert memory.entries == {}


def test_an_unknown_policy_is_refused(paths: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="vault"):
        load_outbox_key(*paths, "vault")


def test_a_locked_keyring_is_reported_not_bypassed(
    paths: tuple[Path, Path], installed: None
) -> None:
    outbox_path, key_file = paths
    with pytest.raises(KeyringUnavailableError, match="KeyringLocked") as caught:
        load_outbox_key(outbox_path, key_file, backend=LockedKeyring())
    assert caught.value.code == "keyring_unavailable"
    # A fresh key file here would hide the keyring's key from every later start.
    assert not key_file.exists()
    assert list(key_file.parent.iterdir()) == []


def test_a_hanging_keyring_is_given_up_on_in_time(
    paths: tuple[Path, Path], installed: None
) -> None:
    outbox_path, key_file = paths
    hanging = HangingKeyring()
    started = time.monotonic()
    try:
        with pytest.raises(KeyringUnavailableError, match="did not answer") as caught:
            load_outbox_key(outbox_path, key_file, backend=hanging, timeout_s=0.3)
        waited = time.monotonic() - started
        assert hanging.entered.is_set()
        assert 0.3 <= waited < 3.0
        assert caught.value.code == "keyring_unavailable"
        assert not key_file.exists()
    finally:
        hanging.release.set()
    for thread in threading.enumerate():
        if thread.name == "outbox-keyring":
            thread.join(10)
            assert not thread.is_alive()


@pytest.mark.parametrize(
    "stored",
    [base64.b64encode(b"\x01" * 16).decode(), base64.b64encode(b"\x01" * 33).decode(), "not*b64"],
    ids=["16-bytes", "33-bytes", "not-base64"],
)
def test_a_wrong_key_in_the_keyring_is_an_error_and_kept(
    paths: tuple[Path, Path], memory: MemoryKeyring, stored: str
) -> None:
    outbox_path, key_file = paths
    entry = (KEYRING_SERVICE, keyring_username(outbox_path))
    memory.entries[entry] = stored
    with pytest.raises(KeyringKeyInvalidError) as caught:
        load_outbox_key(outbox_path, key_file, backend=memory)
    assert caught.value.code == "keyring_key_invalid"
    assert memory.entries == {entry: stored}
    assert not key_file.exists()


def test_a_keyring_that_keeps_nothing_is_an_error(
    paths: tuple[Path, Path], installed: None
) -> None:
    outbox_path, key_file = paths
    with pytest.raises(KeyringUnavailableError, match="did not keep"):
        load_outbox_key(outbox_path, key_file, backend=ForgetfulKeyring())
    assert not key_file.exists()


def test_the_process_keyring_chosen_with_set_keyring_is_used(paths: tuple[Path, Path]) -> None:
    outbox_path, key_file = paths
    # Resolved before the in-memory class is installed, so keyring cannot pick it as default.
    previous = keyring.get_keyring()
    MemoryKeyring.installed = True
    keyring.set_keyring(MemoryKeyring())
    try:
        loaded = load_outbox_key(outbox_path, key_file)
        assert keyring.get_password(KEYRING_SERVICE, str(outbox_path.resolve())) == (
            base64.b64encode(loaded.key).decode()
        )
    finally:
        keyring.set_keyring(previous)
        MemoryKeyring.installed = False
    assert loaded.source is KeySource.KEYRING
    assert not key_file.exists()


def test_a_headless_machine_has_no_keyring_and_gets_a_key_file(tmp_path: Path) -> None:
    """In a fresh process with no session bus and no keyring config, as on a kiosk's Debian."""
    script = textwrap.dedent(
        """
        import stat, sys
        from pathlib import Path
        import keyring
        from offline_queue.keys import load_outbox_key
        data = Path(sys.argv[1])
        loaded = load_outbox_key(data / "outbox.sqlite3", data / "outbox.key")
        mode = stat.S_IMODE((data / "outbox.key").stat().st_mode)
        print(type(keyring.get_keyring()).__module__, loaded.source, oct(mode))
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "PYTHON_KEYRING", "KEYRING_")) and k != "DISPLAY"
    }
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "share"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        PYTHONPATH=str(REPO),
    )
    data = tmp_path / "data"
    data.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["keyring.backends.fail", "file", "0o600"]
