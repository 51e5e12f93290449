"""The terminal's process gives up core dumps and creates private files, before anything else.

Each check runs in a child process: the changes are one-way for the process that makes them.
The terminal runs on Linux (Debian 12), where every part applies.
"""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kiosk.hardening import harden_process
from tests.fixtures.child import run_script

# What a process looks like from inside: core limit, PR_GET_DUMPABLE, umask, a new file's mode.
PROBE = textwrap.dedent(
    """
    def probe(folder):
        import ctypes, os, resource, stat, sys
        libc = ctypes.CDLL(None, use_errno=True)
        umask = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Umask:")][0]
        name = os.path.join(folder, f"probe-{len(os.listdir(folder))}")
        with open(name, "w") as fh:
            fh.write("x")
        return {
            "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
            "dumpable": libc.prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
            "umask": umask,
            "new_file_mode": oct(stat.S_IMODE(os.stat(name).st_mode)),
            "own_fds_readable": bool(os.listdir("/proc/self/fd")),
        }
    """
)


def _child(body: str, folder: Path) -> dict[str, Any]:
    return run_script(PROBE + textwrap.dedent(body), str(folder))


def test_harden_process_turns_core_dumps_off(tmp_path: Path) -> None:
    result = _child(
        """
        import dataclasses, json, os, sys
        os.umask(0o022)
        before = probe(sys.argv[1])
        from kiosk.hardening import harden_process
        done = dataclasses.astuple(harden_process())
        print(json.dumps({"before": before, "after": probe(sys.argv[1]), "done": done}))
        """,
        tmp_path,
    )
    before, after = result["before"], result["after"]
    assert before["dumpable"] == 1 and before["new_file_mode"] == "0o644"  # the test can fail
    assert after["core"] == [0, 0]  # soft and hard: nothing later in the process raises it
    assert after["dumpable"] == 0
    assert after["umask"] == "0077"
    assert after["new_file_mode"] == "0o600"
    assert after["own_fds_readable"]  # the process still reads its own /proc entries
    assert result["done"] == [True, True, 0o077]


def test_main_hardens_before_it_even_reads_its_arguments(tmp_path: Path) -> None:
    result = _child(
        """
        import json, sys
        import main
        try:
            main.main(["--no-such-option"])
        except SystemExit as exit:
            assert exit.code == 2
        print(json.dumps(probe(sys.argv[1])))
        """,
        tmp_path,
    )
    assert result["core"] == [0, 0]
    assert result["dumpable"] == 0
    assert result["umask"] == "0077"


def test_elsewhere_the_linux_only_part_is_left_out_and_logged(tmp_path: Path) -> None:
    result = _child(
        """
        import dataclasses, json, logging, sys
        records = []
        logging.basicConfig(level=logging.INFO, handlers=[logging.Handler()])
        logging.getLogger().handlers[0].emit = lambda r: records.append(r.getMessage())
        from kiosk.hardening import harden_process
        done = dataclasses.astuple(harden_process("darwin"))
        print(json.dumps({**probe(sys.argv[1]), "done": done, "log": records}))
        """,
        tmp_path,
    )
    assert result["done"] == [True, False, 0o077]
    assert result["dumpable"] == 1  # not touched on a system without prctl
    assert result["core"] == [0, 0]
    assert any("PR_SET_DUMPABLE" in line and "darwin" in line for line in result["log"])


def test_on_windows_nothing_is_changed_and_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    with caplog.at_level(logging.INFO, logger="kiosk.hardening"):
        done = harden_process("win32")
    assert (done.core_limit_zero, done.not_dumpable, done.umask) == (False, False, None)
    assert os.umask(mask) == mask  # the umask of this process is as it was
    assert any("nothing changed" in r.getMessage() for r in caplog.records)
