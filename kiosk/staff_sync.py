"""The hall's staff list, provisioned from the platform (GET /api/v1/staff, signed like every
terminal request) and merged into this terminal's staff.json (kiosk/staff.py).

The platform answers {"version", "staff": [{"staff_id", "name", "pin_hash"}]}, each pin_hash in
kiosk/staff.py's encoding (never a PIN). The merge:

- an answer whose version is not above the one held changes nothing (an older copy of the list,
  served late or by a platform restored from a backup, never undoes a newer one);
- a member on the platform's list is written with "source": "platform" (it replaces an entry of
  the same number added here: the hall's list is the authority for the numbers it names);
- a member added here with --add-staff is kept whatever the platform's list says;
- a member removed here with --remove-staff stays inactive whatever the platform's list says
  (its entry is marked "deactivated_locally"; the list's name and PIN hash still reach it), until
  it is added here again;
- a member that came from the platform and is no longer on its list is removed; the staff
  numbers removed are handed to on_removed (StaffSessions.withdraw), so whoever of them is signed
  in is signed out at their next action;
- sign-in failure counts and lockouts are left as they are.

The whole answer is checked before anything is changed, and the file is written once, atomically
and 0600, under the staff list's lock. The audit log gets one "staff_list_updated" entry per list
taken, with counts only.

StaffSync.maybe_sync() is called from the sync engine's cycle (at most every interval_s, 10
minutes by default); sync_now() fetches at once (a command, or staff asking).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kiosk.errors import UserFacingError
from kiosk.i18n import N_, _
from kiosk.platform_client import PlatformClient
from kiosk.staff import (
    DEACTIVATED_LOCALLY,
    StaffDirectory,
    StaffError,
    check_name,
    checked_pin_hash,
    normal_staff_id,
)

log = logging.getLogger(__name__)

STAFF_PATH: Final = "/staff"
SOURCE_PLATFORM: Final = "platform"
VERSION_KEY: Final = "platform_version"  # beside "members" in staff.json
DEFAULT_INTERVAL_S: Final = 10 * 60.0
MAX_STAFF: Final = 500  # members in one list: a larger answer is refused, not merged
STAFF_LIST_UPDATED: Final = "staff_list_updated"
_MAX_VERSION: Final = 2**31 - 1

# Error codes of a sync that took nothing (logged and in SyncResult.error_code, never shown raw).
ANSWER_INVALID: Final = "staff_answer_invalid"
LIST_UNREADABLE: Final = "staff_list_unreadable"

SIGNED_OUT_REMOVED: Final = N_(
    "You have been signed out: your staff number is no longer on this terminal's staff list."
)
_UPDATED: Final = N_(
    "The staff list was updated from the platform: {added} added, {changed} changed, "
    "{removed} removed."
)
_UP_TO_DATE: Final = N_("The staff list is already up to date.")
_NOT_FETCHED: Final = N_(
    "The staff list could not be fetched from the platform. The list on this terminal is "
    "unchanged. (Code: {code})"
)


class StaffAnswerInvalid(ValueError):
    """The platform's answer is not a staff list; nothing of it is taken."""


@dataclass(frozen=True)
class PlatformMember:
    staff_id: str
    name: str
    pin_hash: Mapping[str, Any]  # kiosk/staff.py's encoding, checked

    def __repr__(self) -> str:  # the hash stays out of logs and test reports
        return f"PlatformMember({self.staff_id!r})"


@dataclass(frozen=True)
class StaffList:
    version: int
    members: tuple[PlatformMember, ...]


@dataclass(frozen=True)
class MergeResult:
    applied: bool  # False: the version was not above the one held; nothing changed
    version: int  # the version held after the merge
    added: int = 0
    changed: int = 0  # name, PIN hash or source changed, or taken over from a local entry
    unchanged: int = 0
    removed: int = 0
    kept_local: int = 0  # members added here, kept
    removed_ids: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        """Members from the platform now on the list."""
        return self.added + self.changed + self.unchanged


@dataclass(frozen=True)
class SyncResult:
    merge: MergeResult | None  # None: nothing was fetched or taken
    error_code: str | None = None


def parse_staff_list(doc: object) -> StaffList:
    """The staff list in the platform's answer, every member checked; StaffAnswerInvalid
    otherwise (the message names what is wrong, never a value)."""
    if not isinstance(doc, dict) or set(doc) != {"version", "staff"}:
        raise StaffAnswerInvalid("not {version, staff}")
    version, raw = doc["version"], doc["staff"]
    if type(version) is not int or not 0 <= version <= _MAX_VERSION:
        raise StaffAnswerInvalid("version")
    if not isinstance(raw, list) or len(raw) > MAX_STAFF:
        raise StaffAnswerInvalid("staff")
    members: list[PlatformMember] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"staff_id", "name", "pin_hash"}:
            raise StaffAnswerInvalid(f"staff.{index}")
        staff_id, name = item["staff_id"], item["name"]
        try:
            if not isinstance(staff_id, str) or normal_staff_id(staff_id) != staff_id:
                raise StaffAnswerInvalid(f"staff.{index}.staff_id")
            if not isinstance(name, str) or check_name(name) != name:
                raise StaffAnswerInvalid(f"staff.{index}.name")
        except StaffError:
            raise StaffAnswerInvalid(f"staff.{index}") from None
        try:
            pin_hash = checked_pin_hash(item["pin_hash"])
        except ValueError:
            raise StaffAnswerInvalid(f"staff.{index}.pin_hash") from None
        if staff_id in seen:
            raise StaffAnswerInvalid(f"staff.{index}.staff_id duplicated")
        seen.add(staff_id)
        members.append(PlatformMember(staff_id, name, pin_hash))
    return StaffList(version, tuple(members))


def held_version(data: Mapping[str, Any]) -> int | None:
    """The version of the platform's list merged last; None before the first."""
    version = data.get(VERSION_KEY)
    return version if type(version) is int else None


def merge(data: dict[str, Any], staff: StaffList) -> MergeResult:
    """Merge staff into the staff file's content data, in place (rules: the module's doc).

    data has been read and checked by StaffDirectory; it is changed only when staff's version is
    above the one held."""
    held = held_version(data)
    members: dict[str, Any] = data["members"]
    # Version 0 is a platform that keeps no list for this hall yet: nothing to merge.
    if staff.version <= (held or 0):
        return MergeResult(False, held or 0)
    incoming = {m.staff_id: m for m in staff.members}
    added = changed = unchanged = removed = kept_local = 0
    removed_ids: set[str] = set()
    for staff_id in sorted(members):
        entry = members[staff_id]
        if staff_id in incoming:
            continue
        if entry.get("source") == SOURCE_PLATFORM:
            del members[staff_id]
            removed_ids.add(staff_id)
            removed += 1
        else:
            kept_local += 1
    for staff_id, member in incoming.items():
        before = members.get(staff_id)
        removed_here = before is not None and before.get(DEACTIVATED_LOCALLY) is True
        entry = {
            "name": member.name,
            **member.pin_hash,
            "active": not removed_here,
            "source": SOURCE_PLATFORM,
        }
        if removed_here:
            entry[DEACTIVATED_LOCALLY] = True
        if before is None:
            added += 1
        elif before == entry:
            unchanged += 1
        else:
            changed += 1
        members[staff_id] = entry
    data[VERSION_KEY] = staff.version
    # data["failures"] is left alone: a lockout outlives the list it was earned under.
    return MergeResult(
        applied=True,
        version=staff.version,
        added=added,
        changed=changed,
        unchanged=unchanged,
        removed=removed,
        kept_local=kept_local,
        removed_ids=frozenset(removed_ids),
    )


def _merge_into(staff: StaffList, data: dict[str, Any]) -> MergeResult:
    return merge(data, staff)


class StaffSource(Protocol):
    """Where the hall's staff list comes from: the platform's answer to GET /staff, as JSON."""

    def get_staff(self) -> object: ...


class PlatformStaffSource:
    """GET /api/v1/staff through the terminal's platform client (signed, CA pinned, capped).

    Raises the client's PlatformError subclasses (UserFacingError) when the platform does not
    answer with a JSON object."""

    def __init__(self, client: PlatformClient) -> None:
        self._client = client

    def get_staff(self) -> object:
        get_staff = getattr(self._client, "get_staff", None)
        if callable(get_staff):
            return get_staff()
        return self._client._get_json(STAFF_PATH)


class AuditSink(Protocol):
    def append(
        self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None
    ) -> object: ...


class StaffSync:
    """Fetches the platform's staff list and merges it into the directory; thread-safe."""

    def __init__(
        self,
        directory: StaffDirectory,
        source: StaffSource,
        *,
        audit: AuditSink | None = None,
        on_removed: Callable[[Collection[str]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._directory = directory
        self._source = source
        self._audit = audit
        self._on_removed = on_removed
        self._clock = clock
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last_try: float | None = None

    def due(self) -> bool:
        last = self._last_try
        return last is None or self._clock() - last >= self._interval_s

    def maybe_sync(self) -> SyncResult | None:
        """sync_now() when interval_s has passed since the last try (None otherwise). Never
        raises: a failure is logged and tried again an interval later."""
        if not self.due():
            return None
        try:
            return self.sync_now()
        except Exception:
            log.exception("staff sync failed unexpectedly")
            return SyncResult(None, "internal_error")

    def sync_now(self) -> SyncResult:
        """Fetch the list and merge it now. A platform away, an answer that is not a staff
        list, or an unreadable staff file: logged, nothing changed, error_code says which."""
        with self._lock:
            self._last_try = self._clock()
            try:
                answer = self._source.get_staff()
            except UserFacingError as exc:
                code = str(getattr(exc, "code", None) or type(exc).__name__)
                log.info("staff list not fetched (%s)", code)
                return SyncResult(None, code)
            try:
                staff = parse_staff_list(answer)
            except StaffAnswerInvalid as exc:
                log.warning("staff list from the platform refused: %s", exc)
                return SyncResult(None, ANSWER_INVALID)
            try:
                result = self._directory.change(functools.partial(_merge_into, staff))
            except StaffError:
                return SyncResult(None, LIST_UNREADABLE)  # logged by the directory
            if not result.applied:
                log.debug("staff list version %d not above %d held", staff.version, result.version)
                return SyncResult(result)
            log.info(
                "staff list version %d taken: %d added, %d changed, %d removed, %d local kept",
                result.version,
                result.added,
                result.changed,
                result.removed,
                result.kept_local,
            )
            self._record(result)
            if result.removed_ids and self._on_removed is not None:
                self._on_removed(result.removed_ids)
            return SyncResult(result)

    def _record(self, result: MergeResult) -> None:
        if self._audit is None:
            return
        details = {
            "version": result.version,
            "added": result.added,
            "changed": result.changed,
            "removed": result.removed,
            "count": result.count,
        }
        try:
            self._audit.append(STAFF_LIST_UPDATED, "", details)
        except Exception as exc:  # the list is taken either way; a lost entry is logged
            log.error("the staff list's audit entry was not written: %s", type(exc).__name__)


def describe(result: SyncResult) -> str:
    """The sentence for whoever asked for a sync (a command's output)."""
    if result.merge is None:
        return _(_NOT_FETCHED).format(code=result.error_code or "unknown")
    if not result.merge.applied:
        return _(_UP_TO_DATE)
    merged = result.merge
    return _(_UPDATED).format(added=merged.added, changed=merged.changed, removed=merged.removed)
