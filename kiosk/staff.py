"""Who may sign in at a counter or village service point, and who is signed in now.

The staff directory lives in the terminal's data directory (staff.json, mode 0600, replaced
atomically). Each member has a display name for the header, an scrypt hash of a 6-12 digit PIN
with its own salt, and an active flag; the PIN itself is never kept or logged.

Sign-in failures are counted per staff number in the same file, so switching the terminal off and
on again does not reset them: after LOCK_AFTER failures the number is locked for LOCK_FIRST_S,
each further failure doubles the wait up to LOCK_MAX_S, and a success clears the count. While
locked even the right PIN is refused. A number nobody has and a wrong PIN get the same refusal
and cost the same scrypt work, and numbers nobody has are counted too (in memory only: a PIN
typed into the number field must not end up on disk), so the answers do not tell which numbers
exist.

Staff members are added and removed with the terminal's command line (add_staff_command and its
siblings, called from main.py), or provisioned from the platform (kiosk/staff_sync.py merges the
hall's list in through StaffDirectory.change); the staff number of whoever is signed in becomes a
submission's operator_id.

A PIN hash has one encoding wherever it is kept or sent (staff.json here, GET /api/v1/staff on
the platform, docs/api.md "Staff"): {"salt": base64 of 16 bytes, "hash": base64 of the 32-byte
scrypt key, "scrypt": {"n", "r", "p"}}. hash_pin makes one, checked_pin_hash takes one from
elsewhere, pin_hash_matches checks a PIN against one.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar

from kiosk.errors import UserFacingError
from kiosk.i18n import N_, _
from offline_queue.files import PRIVATE_DIR, PRIVATE_FILE, write_private_atomically

log = logging.getLogger(__name__)
_T = TypeVar("_T")

STAFF_FILE = "staff.json"
# Set in a member's entry by deactivate(): removed on this terminal, whatever a list says.
DEACTIVATED_LOCALLY = "deactivated_locally"
_LOCK_FILE = "staff.json.lock"  # serialises this terminal and a provisioning command
_FORMAT = 1

STAFF_ID = re.compile(r"[A-Za-z0-9]{1,16}")
PIN = re.compile(r"[0-9]{6,12}")
NAME_MAX = 32

LOCK_AFTER = 3  # failures before the first wait
LOCK_FIRST_S = 30.0
LOCK_MAX_S = 15 * 60.0
_UNKNOWN_TRACKED = 512  # numbers nobody has, counted in memory; the oldest are forgotten first

DEFAULT_IDLE_S = 10 * 60.0  # a counter left alone this long signs its staff member out

_SALT_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**14
    r: int = 8
    p: int = 1

    def hash(self, pin: str, salt: bytes) -> bytes:
        return hashlib.scrypt(
            pin.encode("ascii"),
            salt=salt,
            n=self.n,
            r=self.r,
            p=self.p,
            maxmem=256 * self.r * self.n + 1024 * 1024,
            dklen=_KEY_BYTES,
        )


DEFAULT_COST = ScryptCost()

# The costs a PIN hash from elsewhere may name: a hash that asks for much more memory or time
# at every sign-in than this terminal's own (n=2**14, r=8: 16 MiB) is refused, not run. The
# dearest taken, n=2**15 and r=8, needs 32 MiB.
_MIN_N, _MAX_N = 2**10, 2**15
_MAX_R = 8
_MAX_P = 4


def hash_pin(pin: str, cost: ScryptCost = DEFAULT_COST) -> dict[str, Any]:
    """The PIN hash encoding of pin with a fresh salt (the PIN itself is not in it)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return {
        "salt": _b64(salt),
        "hash": _b64(cost.hash(pin, salt)),
        "scrypt": {"n": cost.n, "r": cost.r, "p": cost.p},
    }


def checked_pin_hash(encoded: object) -> dict[str, Any]:
    """A PIN hash encoding from elsewhere, exactly its three members, its salt and key of the
    right length and its cost within bounds; ValueError otherwise."""
    if not isinstance(encoded, dict) or set(encoded) != {"salt", "hash", "scrypt"}:
        raise ValueError("a PIN hash is {salt, hash, scrypt}")
    params = encoded["scrypt"]
    if not isinstance(params, dict) or set(params) != {"n", "r", "p"}:
        raise ValueError("scrypt parameters are {n, r, p}")
    n, r, p = params["n"], params["r"], params["p"]
    if not all(type(value) is int for value in (n, r, p)):
        raise ValueError("scrypt parameters are integers")
    if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError("scrypt parameters out of bounds")
    salt, digest = encoded["salt"], encoded["hash"]
    if not isinstance(salt, str) or not isinstance(digest, str):
        raise ValueError("salt and hash are base64 text")
    try:
        raw_salt = base64.b64decode(salt, validate=True)
        raw_digest = base64.b64decode(digest, validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError("salt and hash are base64 text") from exc
    if len(raw_salt) != _SALT_BYTES or len(raw_digest) != _KEY_BYTES:
        raise ValueError("a 16-byte salt and a 32-byte key")
    return {"salt": salt, "hash": digest, "scrypt": {"n": n, "r": r, "p": p}}


def pin_hash_matches(encoded: object, pin: str) -> bool:
    """True when pin has this PIN hash encoding (compared in constant time). A damaged
    encoding or a PIN of the wrong shape is False."""
    try:
        checked = checked_pin_hash(encoded)
    except ValueError:
        return False
    if not PIN.fullmatch(pin):
        return False
    params = checked["scrypt"]
    cost = ScryptCost(n=params["n"], r=params["r"], p=params["p"])
    digest = cost.hash(pin, base64.b64decode(checked["salt"]))
    return hmac.compare_digest(digest, base64.b64decode(checked["hash"]))


# -- what people are told ----------------------------------------------------------------------


class StaffError(UserFacingError):
    """A staff directory operation refused, with a sentence for the person who asked."""


class SignInRefused(StaffError):
    MESSAGE = N_("The staff number or PIN is not right. Please try again.")


class SignInLocked(StaffError):
    """Too many failures: wait_s says how long until the next try is looked at."""

    MESSAGE = N_("Too many wrong tries. Please wait {seconds} seconds and try again.")
    MESSAGE_MINUTES = N_("Too many wrong tries. Please wait {minutes} minutes and try again.")

    def __init__(self, wait_s: float) -> None:
        self.wait_s = max(1, math.ceil(wait_s))
        if self.wait_s < 60:
            super().__init__(self.MESSAGE, seconds=self.wait_s)
        else:
            super().__init__(self.MESSAGE_MINUTES, minutes=math.ceil(self.wait_s / 60))


class NoStaff(StaffError):
    MESSAGE = N_(
        "No staff member is set up on this terminal. Add one with hall-terminal --add-staff."
    )


class StaffListUnreadable(StaffError):
    MESSAGE = N_(
        "The staff list on this terminal cannot be read. Please ask the administrator for help."
    )


class BadStaffId(StaffError):
    MESSAGE = N_("A staff number is 1 to 16 letters or digits, such as S0012.")


class BadStaffName(StaffError):
    MESSAGE = N_(
        "Give the staff member's name as it should appear on screen, at most 32 characters."
    )


class WeakPin(StaffError):
    MESSAGE = N_(
        "A PIN is 6 to 12 digits with at least three different digits, not a run such as "
        "123456, and not part of the staff number."
    )


# -- the directory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    name: str


@dataclass(frozen=True)
class StaffSession:
    staff_id: str
    name: str
    signed_in_at: float  # seconds since the epoch, from the directory's clock


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


def normal_staff_id(text: str) -> str:
    """A staff number as kept: upper case. BadStaffId when it is not 1-16 letters or digits."""
    cleaned = text.strip()
    if not STAFF_ID.fullmatch(cleaned):
        raise BadStaffId(BadStaffId.MESSAGE)
    return cleaned.upper()


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > NAME_MAX or not cleaned.isprintable():
        raise BadStaffName(BadStaffName.MESSAGE)
    return cleaned


def check_pin(pin: str, staff_id: str = "") -> None:
    """WeakPin unless pin is 6-12 digits that are not trivially guessed."""
    if not PIN.fullmatch(pin):
        raise WeakPin(WeakPin.MESSAGE)
    if len(set(pin)) < 3:  # 000000, 121212, 112211
        raise WeakPin(WeakPin.MESSAGE)
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):  # 123456 (and 890123), 654321
        raise WeakPin(WeakPin.MESSAGE)
    if staff_id and pin in staff_id.upper():
        raise WeakPin(WeakPin.MESSAGE)


def lock_wait_s(failures: int) -> float:
    """How long a staff number is locked after this many failures in a row (0: not locked)."""
    if failures < LOCK_AFTER:
        return 0.0
    return min(LOCK_FIRST_S * float(2 ** min(failures - LOCK_AFTER, 32)), LOCK_MAX_S)


class StaffDirectory:
    """The staff list and the sign-in failure counts in data_dir/staff.json.

    Every operation reads the file afresh and writes it back under a lock (in this process and
    between processes), so a member added from the command line while the terminal runs counts
    at once and no count is lost. Sign-in runs scrypt and writes a file: call it off the GUI
    thread.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        cost: ScryptCost = DEFAULT_COST,
    ) -> None:
        self._dir = data_dir
        self.path = data_dir / STAFF_FILE
        self._clock = clock
        self._cost = cost
        self._lock = threading.Lock()
        self._unknown: OrderedDict[str, _Failures] = OrderedDict()
        self._dummy_salt = secrets.token_bytes(_SALT_BYTES)

    # -- provisioning --

    def add(self, staff_id: str, name: str, pin: str) -> bool:
        """Add a member, or replace one's name and PIN (which also clears its failures and
        makes it active again). True when the member is new."""
        staff_id = normal_staff_id(staff_id)
        name = check_name(name)
        check_pin(pin, staff_id)
        encoded = hash_pin(pin, self._cost)
        with self._locked(for_change=True) as data:
            members = data["members"]
            new = staff_id not in members
            # Added here, so kept here: a platform's list never removes it (kiosk/staff_sync.py).
            members[staff_id] = {"name": name, **encoded, "active": True}
            data["failures"].pop(staff_id, None)
        log.info("staff member %s %s", staff_id, "added" if new else "replaced")
        return new

    def deactivate(self, staff_id: str) -> bool:
        """The member can no longer sign in; False when there is no such member. The entry is
        kept (inactive) so its number is not handed to someone else by mistake, and marked as
        deactivated here, so that the platform's list does not make it active again
        (kiosk/staff_sync.py); add() makes it active again."""
        staff_id = normal_staff_id(staff_id)
        with self._locked(for_change=True) as data:
            member = data["members"].get(staff_id)
            if member is None:
                return False
            member["active"] = False
            member[DEACTIVATED_LOCALLY] = True
            data["failures"].pop(staff_id, None)
        log.info("staff member %s deactivated", staff_id)
        return True

    def change(self, edit: Callable[[dict[str, Any]], _T]) -> _T:
        """edit's result, edit having changed the file's content in place under both locks.

        The content ({"format", "members", "failures"} and whatever a provisioner keeps beside
        them, kiosk/staff_sync.py) is written back, atomically and 0600, whenever edit changed
        it, even if edit then raised: edit checks everything before it changes anything."""
        with self._locked(for_change=True) as data:
            return edit(data)

    def members(self) -> list[StaffMember]:
        """Active members by staff number: numbers and names only."""
        with self._locked(for_change=False) as data:
            return [
                StaffMember(staff_id, str(entry["name"]))
                for staff_id, entry in sorted(data["members"].items())
                if entry.get("active")
            ]

    # -- sign-in --

    def sign_in(self, staff_id: str, pin: str) -> StaffSession:
        """A session for the member, or SignInRefused / SignInLocked / NoStaff."""
        try:
            key = normal_staff_id(staff_id)
        except BadStaffId:
            key = ""
        with self._locked(for_change=True) as data:
            members: dict[str, Any] = data["members"]
            if not members:
                raise NoStaff(NoStaff.MESSAGE)
            entry = members.get(key) if key else None
            known = entry is not None
            failures = self._failures_of(data, key, known=known)
            now = self._clock()
            wait = min(failures.locked_until - now, LOCK_MAX_S)  # a clock set back stays bounded
            if wait > 0:
                log.warning("staff sign-in refused: %s is locked", key if known else "a number")
                raise SignInLocked(wait)
            # The same scrypt work whether the number exists, is inactive or is nobody's.
            if entry is None:
                self._cost.hash(pin if PIN.fullmatch(pin) else "0", self._dummy_salt)
            elif self._pin_matches(entry, pin) and entry.get("active") is True:
                data["failures"].pop(key, None)
                log.info("staff member %s signed in", key)
                return StaffSession(key, str(entry["name"]), now)
            failures.count += 1
            wait = lock_wait_s(failures.count)
            failures.locked_until = now + wait
            if known:
                data["failures"][key] = {
                    "count": failures.count,
                    "locked_until": failures.locked_until,
                }
                log.warning("staff sign-in refused for %s (%d in a row)", key, failures.count)
            else:
                # Written again unchanged: the same disk work as a count kept for a member. The
                # typed number is not logged: it may be a PIN typed into the wrong field.
                self._write(data)
                log.warning("staff sign-in refused for a number nobody has")
            if wait > 0:
                raise SignInLocked(wait)
            raise SignInRefused(SignInRefused.MESSAGE)

    def _failures_of(self, data: dict[str, Any], key: str, *, known: bool) -> _Failures:
        if known:
            kept = data["failures"].get(key, {})
            return _Failures(int(kept.get("count", 0)), float(kept.get("locked_until", 0.0)))
        failures = self._unknown.pop(key, None) or _Failures()
        self._unknown[key] = failures
        while len(self._unknown) > _UNKNOWN_TRACKED:
            self._unknown.popitem(last=False)
        return failures

    def _pin_matches(self, entry: dict[str, Any], pin: str) -> bool:
        try:
            params = entry["scrypt"]
            cost = replace(self._cost, n=int(params["n"]), r=int(params["r"]), p=int(params["p"]))
            salt = base64.b64decode(entry["salt"], validate=True)
            expected = base64.b64decode(entry["hash"], validate=True)
        except (KeyError, TypeError, ValueError):
            log.error("a staff entry is damaged; it cannot sign in")
            self._cost.hash("0", self._dummy_salt)
            return False
        if not PIN.fullmatch(pin):
            cost.hash("0", salt)  # the same work as a PIN of the right shape
            return False
        return hmac.compare_digest(cost.hash(pin, salt), expected)

    # -- the file --

    @contextlib.contextmanager
    def _locked(self, *, for_change: bool) -> Iterator[dict[str, Any]]:
        """The file's content under both locks; written back when for_change and no exception
        left the block, except an unreadable file, which is never overwritten here."""
        with self._lock:
            self._dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            fd = os.open(self._dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                data = self._read()
                before = json.dumps(data, sort_keys=True)
                try:
                    yield data
                finally:
                    # A refusal raised inside still has its failure count to keep.
                    if for_change and json.dumps(data, sort_keys=True) != before:
                        self._write(data)
            finally:
                os.close(fd)  # drops the flock

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"format": _FORMAT, "members": {}, "failures": {}}
        except OSError as exc:
            log.error("the staff list cannot be read: %s", exc.strerror)
            raise StaffListUnreadable(StaffListUnreadable.MESSAGE) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != _FORMAT:
                raise ValueError("not a staff list")
            members, failures = data.get("members"), data.get("failures")
            if not isinstance(members, dict) or not isinstance(failures, dict):
                raise ValueError("no members or failures")
            for entry in members.values():
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise ValueError("a member without a name")
            for kept in failures.values():
                if not isinstance(kept, dict):
                    raise ValueError("a failure count that is not an object")
                int(kept.get("count", 0)), float(kept.get("locked_until", 0.0))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            log.error("the staff list %s is damaged", self.path)
            raise StaffListUnreadable(StaffListUnreadable.MESSAGE) from exc
        return data

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        write_private_atomically(self.path, text.encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- who is signed in now ----------------------------------------------------------------------


class StaffSessions:
    """The signed-in staff member, signed out after idle_s without activity.

    No timer: the UI calls touch() on each key press or tap and current() when it needs to know
    (its own idle guard ticks), so the rules stay testable with a fake clock. Use a monotonic
    clock: a wall clock set forward would sign everyone out, one set back would keep them in.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, idle_s: float = DEFAULT_IDLE_S
    ) -> None:
        if idle_s <= 0:
            raise ValueError("idle_s must be positive")
        self._clock = clock
        self._idle_s = idle_s
        self._session: StaffSession | None = None
        self._last_activity = 0.0
        # Staff numbers taken off the staff list while the terminal runs (told from the sync
        # thread): whoever of them is signed in is signed out at their next action.
        self._withdrawn_lock = threading.Lock()
        self._withdrawn: frozenset[str] = frozenset()
        self._ended_by_withdrawal = False

    @property
    def idle_s(self) -> float:
        return self._idle_s

    def sign_in(self, session: StaffSession) -> None:
        with self._withdrawn_lock:
            # Signed in again since (the PIN checked against the list as it is now).
            self._withdrawn = self._withdrawn - {session.staff_id}
        self._session = session
        self._last_activity = self._clock()
        self._ended_by_withdrawal = False

    def withdraw(self, staff_ids: Iterable[str]) -> None:
        """These staff numbers are no longer on the list; any thread may say so."""
        with self._withdrawn_lock:
            self._withdrawn = self._withdrawn | frozenset(staff_ids)

    @property
    def ended_by_withdrawal(self) -> bool:
        """True when the last session ended because its member left the staff list (the
        sign-out's reason is then "removed", not "idle")."""
        return self._ended_by_withdrawal

    def sign_out(self) -> StaffSession | None:
        """Sign out; returns who was signed in (None when nobody was)."""
        session, self._session = self._session, None
        if session is not None:
            self._ended_by_withdrawal = False
            log.info("staff member %s signed out", session.staff_id)
        return session

    def touch(self) -> None:
        if self.current() is not None:
            self._last_activity = self._clock()

    def current(self) -> StaffSession | None:
        if self._session is not None:
            with self._withdrawn_lock:
                withdrawn = self._session.staff_id in self._withdrawn
            if withdrawn:
                log.info("staff member %s signed out: off the staff list", self._session.staff_id)
                self._session = None
                self._ended_by_withdrawal = True
        if self._session is not None and self.remaining_s() <= 0:
            log.info("staff member %s signed out after being idle", self._session.staff_id)
            self._session = None
        return self._session

    def remaining_s(self) -> float:
        """Seconds until the idle sign-out (0 when nobody is signed in)."""
        if self._session is None:
            return 0.0
        return max(0.0, self._idle_s - (self._clock() - self._last_activity))

    @property
    def operator_id(self) -> str | None:
        """The staff number a submission made now is attributed to."""
        session = self.current()
        return session.staff_id if session else None


# -- the command line (main.py --add-staff, --remove-staff, --list-staff) ----------------------


def console_pin_reader(stdin: TextIO | None = None) -> Callable[[str], str]:
    """How --add-staff reads the PIN: typed twice without echo on a terminal; from a script, one
    line on standard input (given back for both asks, there is no one to mistype it)."""
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        return getpass.getpass
    line: list[str] = []

    def read(prompt: str) -> str:
        del prompt  # nobody reads a prompt on a pipe
        if not line:
            line.append(stream.readline().rstrip("\r\n"))
        return line[0]

    return read


def add_staff_command(
    data_dir: Path,
    staff_id: str,
    name: str,
    read_pin: Callable[[str], str],
    *,
    cost: ScryptCost = DEFAULT_COST,
) -> tuple[bool, str]:
    """--add-staff: whether it worked, and the sentence for the administrator."""
    try:
        staff_id = normal_staff_id(staff_id)
        name = check_name(name)
        try:
            pin = read_pin(_("PIN for {staff} (6 to 12 digits): ").format(staff=staff_id))
        except EOFError:
            pin = ""
        if not pin:
            return False, _("No PIN was given. Nothing was changed.")
        check_pin(pin, staff_id)
        try:
            again = read_pin(_("The same PIN again: "))
        except EOFError:
            again = ""
        if not hmac.compare_digest(pin.encode("ascii"), again.encode("ascii", "replace")):
            return False, _("The two PINs were not the same. Nothing was changed.")
        new = StaffDirectory(data_dir, cost=cost).add(staff_id, name, pin)
    except StaffError as exc:
        return False, exc.user_message()
    except OSError as exc:
        log.error("the staff list in %s was not saved: %s", data_dir, exc.strerror)
        return False, _("The staff list could not be saved. Nothing was changed.")
    if new:
        sentence = _("{staff} ({name}) can now sign in on this terminal.")
    else:
        sentence = _("{staff} ({name}) was updated: the new PIN counts from now on.")
    return True, sentence.format(staff=staff_id, name=name)


def remove_staff_command(data_dir: Path, staff_id: str) -> tuple[bool, str]:
    """--remove-staff: the member can no longer sign in."""
    try:
        staff_id = normal_staff_id(staff_id)
        removed = StaffDirectory(data_dir).deactivate(staff_id)
    except StaffError as exc:
        return False, exc.user_message()
    except OSError as exc:
        log.error("the staff list in %s was not saved: %s", data_dir, exc.strerror)
        return False, _("The staff list could not be saved. Nothing was changed.")
    if not removed:
        return False, _("There is no staff member {staff} on this terminal.").format(staff=staff_id)
    return True, _("{staff} can no longer sign in on this terminal.").format(staff=staff_id)


def list_staff_command(data_dir: Path) -> tuple[bool, str]:
    """--list-staff: one line per member who may sign in (number and name)."""
    try:
        members = StaffDirectory(data_dir).members()
    except StaffError as exc:
        return False, exc.user_message()
    except OSError as exc:
        log.error("the staff list in %s cannot be read: %s", data_dir, exc.strerror)
        return False, StaffListUnreadable(StaffListUnreadable.MESSAGE).user_message()
    if not members:
        return True, _("No staff member can sign in on this terminal yet.")
    width = max(len(m.staff_id) for m in members)
    return True, "\n".join(f"{m.staff_id.ljust(width)}  {m.name}" for m in members)
