"""The one way private files are written: whole or not at all, 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from offline_queue.files import write_private_atomically


def test_written_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "key.json"
    old = os.umask(0)
    try:
        write_private_atomically(target, b"first")
        write_private_atomically(target, b"second" * 100_000)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"second" * 100_000
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.json"]  # no temporary left


def test_a_file_system_that_refuses_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "bundle.json"
    target.write_bytes(b"old")

    def refuse(_fd: int, _mode: int) -> None:
        raise PermissionError("vfat")

    monkeypatch.setattr(os, "fchmod", refuse)
    with pytest.raises(PermissionError):
        write_private_atomically(target, b"new")
    assert target.read_bytes() == b"old"  # untouched, and no temporary left
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.json"]
    write_private_atomically(target, b"new", narrow=False)  # a signed, sealed bundle on a stick
    assert target.read_bytes() == b"new"
