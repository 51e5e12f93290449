"""What the terminal's process does to itself first: no core dumps, and new files private.

A core dump holds whatever was in memory when the process died: the card just read, the form on
the screen, the outbox key. Written to disk (or handed to a crash reporter) it would outlive the
visit that the session wipe ends, so the process gives up core dumps: RLIMIT_CORE 0 (soft and
hard, so nothing later raises it again) and, on Linux, PR_SET_DUMPABLE 0, which also keeps other
processes of the same user from attaching a debugger or reading its memory.

The umask 077 makes every file the process creates readable by its own user only (the receipt
counter, the catalogue cache, Qt's caches); the outbox, its key and the receipts set their 0600
modes explicitly as well, whatever the umask.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PR_SET_DUMPABLE = 4  # <linux/prctl.h>


@dataclass(frozen=True, slots=True)
class Hardening:
    """What harden_process managed to do on this system."""

    core_limit_zero: bool  # RLIMIT_CORE is 0: the kernel writes no core file
    not_dumpable: bool  # PR_SET_DUMPABLE is 0: no core handler, no same-user ptrace
    umask: int | None  # the umask now in force, None where the system has none


def harden_process(platform: str = sys.platform) -> Hardening:
    """Turn core dumps off and make new files private; never raises.

    Meant to run first thing in main, before anything personal is in memory. platform is the
    system to act for (sys.platform); anything but Linux gets what it supports, and the log says
    what was left out.
    """
    if platform == "win32":
        log.info("process hardening: no core limits or umask on Windows; nothing changed")
        return Hardening(core_limit_zero=False, not_dumpable=False, umask=None)
    os.umask(PRIVATE_UMASK)
    return Hardening(
        core_limit_zero=_no_core_files(),
        not_dumpable=_not_dumpable(platform),
        umask=PRIVATE_UMASK,
    )


def _no_core_files() -> bool:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError) as exc:
        log.warning("process hardening: core file limit not set (%s)", exc)
        return False
    return True


def _not_dumpable(platform: str) -> bool:
    if not platform.startswith("linux"):
        log.info("process hardening: PR_SET_DUMPABLE is Linux only; not set on %s", platform)
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError) as exc:
        log.warning("process hardening: prctl unavailable (%s)", exc)
        return False
    if result != 0:
        log.warning("process hardening: prctl refused (%s)", os.strerror(ctypes.get_errno()))
        return False
    return True
