"""The staff list from the platform: the PIN hash encoding, the answer's checks, the merge rules,
and when the terminal asks (no network: the platform's answer is handed in)."""

from __future__ import annotations

import json
import stat
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import set_language
from kiosk.platform_client import PlatformUnreachable
from kiosk.staff import (
    STAFF_FILE,
    ScryptCost,
    SignInLocked,
    SignInRefused,
    StaffDirectory,
    StaffSession,
    StaffSessions,
    checked_pin_hash,
    hash_pin,
    pin_hash_matches,
    remove_staff_command,
)
from kiosk.staff_sync import (
    ANSWER_INVALID,
    SIGNED_OUT_REMOVED,
    SOURCE_PLATFORM,
    STAFF_LIST_UPDATED,
    VERSION_KEY,
    StaffAnswerInvalid,
    StaffSync,
    describe,
    parse_staff_list,
)

# The cheapest cost a PIN hash from the platform may name (the real one is 2**14).
LOW = ScryptCost(n=2**10, r=1, p=1)
CHEAP = ScryptCost(n=2**4, r=1, p=1)  # for members added here, as tests/unit/test_staff.py
PIN = "204871"
OTHER_PIN = "739205"
LOCAL_PIN = "581937"


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Source:
    """The platform's answers, one per call; an exception is raised instead of answered."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_staff(self) -> object:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    def append(self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None) -> None:
        self.entries.append((kind, staff, dict(details or {})))


def member(staff_id: str, name: str, pin: str = PIN) -> dict[str, Any]:
    return {"staff_id": staff_id, "name": name, "pin_hash": hash_pin(pin, LOW)}


def answer(version: int, *members: dict[str, Any]) -> dict[str, Any]:
    return {"version": version, "staff": list(members)}


@pytest.fixture
def directory(tmp_path: Path) -> StaffDirectory:
    return StaffDirectory(tmp_path, cost=CHEAP)


def read(directory: StaffDirectory) -> dict[str, Any]:
    data = json.loads(directory.path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


# -- the encoding --------------------------------------------------------------------------------


def test_a_pin_hash_holds_no_pin_and_verifies_only_its_pin() -> None:
    encoded = hash_pin(PIN, LOW)
    assert set(encoded) == {"salt", "hash", "scrypt"}
    assert encoded["scrypt"] == {"n": 2**10, "r": 1, "p": 1}
    assert PIN not in json.dumps(encoded)
    assert checked_pin_hash(encoded) == encoded
    assert pin_hash_matches(encoded, PIN)
    assert not pin_hash_matches(encoded, OTHER_PIN)
    assert not pin_hash_matches(encoded, "12ab56")
    assert hash_pin(PIN, LOW)["salt"] != encoded["salt"]  # a fresh salt each time


@pytest.mark.parametrize(
    "damage",
    [
        {"scrypt": {"n": 2**30, "r": 8, "p": 1}},  # gigabytes at every sign-in
        {"scrypt": {"n": 2**4, "r": 1, "p": 1}},  # too cheap to protect a 6-digit PIN
        {"scrypt": {"n": 3000, "r": 8, "p": 1}},  # not a power of two
        {"scrypt": {"n": 2**14, "r": 64, "p": 1}},
        {"scrypt": {"n": 2**16, "r": 8, "p": 1}},  # 64 MiB at every sign-in
        {"scrypt": {"n": 2**17, "r": 16, "p": 1}},  # 256 MiB
        {"scrypt": {"n": 2**14, "r": 16, "p": 1}},
        {"scrypt": {"n": 2**14, "r": 8, "p": 16}},
        {"scrypt": {"n": "16384", "r": 8, "p": 1}},
        {"salt": "c2hvcnQ="},  # 5 bytes
        {"hash": "not base64!"},
        {"pin": PIN},  # no member the encoding does not name
    ],
)
def test_a_pin_hash_from_elsewhere_outside_the_encoding_is_refused(
    damage: dict[str, Any],
) -> None:
    encoded = {**hash_pin(PIN, LOW), **damage}
    with pytest.raises(ValueError, match=r"\w"):
        checked_pin_hash(encoded)
    assert not pin_hash_matches(encoded, PIN)


@pytest.mark.parametrize(
    "params",
    [
        {"n": 2**14, "r": 8, "p": 1},  # what this terminal and the platform make
        {"n": 2**15, "r": 8, "p": 1},  # the dearest taken from elsewhere: 32 MiB
        {"n": 2**10, "r": 1, "p": 1},
    ],
)
def test_a_pin_hash_from_elsewhere_within_the_bounds_is_taken(params: dict[str, int]) -> None:
    encoded = {**hash_pin(PIN, LOW), "scrypt": params}
    assert checked_pin_hash(encoded) == encoded


# -- the answer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"version": 1},
        {"version": -1, "staff": []},
        {"version": True, "staff": []},
        {"version": 1, "staff": {}},
        {"version": 1, "staff": [{"staff_id": "S0012", "name": "李敏"}]},
        {"version": 1, "staff": [{**member("S0012", "李敏"), "pin": PIN}]},
        {"version": 1, "staff": [member("s0012", "李敏")]},  # not the kept, upper-case form
        {"version": 1, "staff": [member("S-0012", "李敏")]},
        {"version": 1, "staff": [member("S0012", "")]},
        {"version": 1, "staff": [member("S0012", "李敏"), member("S0012", "王芳")]},
        {"version": 1, "staff": [{**member("S0012", "李敏"), "pin_hash": {"hash": "x"}}]},
        {"version": 1, "staff": [member("S0012", "李敏")], "extra": 1},
    ],
)
def test_an_answer_that_is_not_a_staff_list_is_refused_whole(doc: object) -> None:
    with pytest.raises(StaffAnswerInvalid):
        parse_staff_list(doc)


def test_a_refused_answer_changes_nothing_and_is_not_audited(directory: StaffDirectory) -> None:
    directory.add("L0001", "赵强", LOCAL_PIN)
    before = directory.path.read_bytes()
    audit = Audit()
    bad = answer(5, member("S0012", "李敏"), {"staff_id": "S0013"})
    result = StaffSync(directory, Source(bad), audit=audit).sync_now()
    assert (result.merge, result.error_code) == (None, ANSWER_INVALID)
    assert directory.path.read_bytes() == before
    assert audit.entries == []


# -- the merge -----------------------------------------------------------------------------------


def test_platform_members_are_marked_and_sign_in_with_their_pin(
    directory: StaffDirectory,
) -> None:
    audit = Audit()
    sync = StaffSync(directory, Source(answer(3, member("S0012", "李敏"))), audit=audit)
    result = sync.sync_now().merge
    assert result is not None and result.applied
    assert (result.added, result.changed, result.removed, result.count) == (1, 0, 0, 1)
    data = read(directory)
    assert data[VERSION_KEY] == 3
    assert data["members"]["S0012"]["source"] == SOURCE_PLATFORM
    assert data["members"]["S0012"]["active"] is True
    assert directory.sign_in("S0012", PIN).name == "李敏"
    with pytest.raises(SignInRefused):
        directory.sign_in("S0012", OTHER_PIN)
    assert stat.S_IMODE(directory.path.stat().st_mode) == 0o600
    # Nothing left beside the file by the atomic write.
    assert sorted(p.name for p in directory.path.parent.iterdir()) == [
        STAFF_FILE,
        STAFF_FILE + ".lock",
    ]


def test_local_members_are_kept_and_only_platform_members_are_removed(
    directory: StaffDirectory,
) -> None:
    directory.add("L0001", "赵强", LOCAL_PIN)
    removed: list[Collection[str]] = []
    wang = member("S0013", "王芳")  # as the platform keeps it: hashed once
    source = Source(answer(1, member("S0012", "李敏"), wang), answer(2, wang), answer(3))
    sync = StaffSync(directory, source, on_removed=removed.append)
    sync.sync_now()
    assert [m.staff_id for m in directory.members()] == ["L0001", "S0012", "S0013"]

    second = sync.sync_now().merge
    assert second is not None
    assert (second.removed, second.unchanged, second.kept_local) == (1, 1, 1)
    assert second.removed_ids == {"S0012"}
    assert removed == [frozenset({"S0012"})]
    assert [m.staff_id for m in directory.members()] == ["L0001", "S0013"]

    sync.sync_now()  # the platform's list emptied: what it gave goes, what was added here stays
    assert [m.staff_id for m in directory.members()] == ["L0001"]
    assert directory.sign_in("L0001", LOCAL_PIN).staff_id == "L0001"
    assert "source" not in read(directory)["members"]["L0001"]


def test_a_member_removed_here_stays_removed_whatever_the_list_says(
    directory: StaffDirectory,
) -> None:
    li, wang = member("S0012", "李敏"), member("S0013", "王芳")
    renamed = {**li, "name": "李敏敏"}
    source = Source(answer(1, li), answer(2, li, wang), answer(3, renamed, wang))
    sync = StaffSync(directory, source)
    sync.sync_now()
    assert remove_staff_command(directory.path.parent, "S0012")[0]
    assert read(directory)["members"]["S0012"]["deactivated_locally"] is True

    second = sync.sync_now().merge  # a newer list, still naming S0012
    assert second is not None and second.applied
    assert (second.added, second.unchanged) == (1, 1)
    assert [m.staff_id for m in directory.members()] == ["S0013"]
    entry = read(directory)["members"]["S0012"]
    assert (entry["active"], entry["deactivated_locally"]) == (False, True)
    with pytest.raises(SignInRefused):
        directory.sign_in("S0012", PIN)

    third = sync.sync_now().merge  # the hall's changes still reach the entry, inactive
    assert third is not None and third.changed == 1
    entry = read(directory)["members"]["S0012"]
    assert (entry["name"], entry["active"]) == ("李敏敏", False)
    assert [m.staff_id for m in directory.members()] == ["S0013"]

    # Added again here: the member may sign in again, with the PIN given here.
    directory.add("S0012", "李敏", LOCAL_PIN)
    assert "deactivated_locally" not in read(directory)["members"]["S0012"]
    assert directory.sign_in("S0012", LOCAL_PIN).staff_id == "S0012"


def test_the_platform_takes_over_a_number_it_names(directory: StaffDirectory) -> None:
    directory.add("S0012", "李敏", LOCAL_PIN)
    result = StaffSync(directory, Source(answer(1, member("S0012", "李敏", PIN)))).sync_now()
    assert result.merge is not None and result.merge.changed == 1
    assert directory.sign_in("S0012", PIN).staff_id == "S0012"
    with pytest.raises(SignInRefused):
        directory.sign_in("S0012", LOCAL_PIN)


def test_a_version_not_above_the_one_held_is_ignored(directory: StaffDirectory) -> None:
    audit = Audit()
    source = Source(
        answer(7, member("S0012", "李敏")),
        answer(6),  # an older list, served late
        answer(7, member("S0013", "王芳")),  # the same number: not a newer list
    )
    sync = StaffSync(directory, source, audit=audit)
    sync.sync_now()
    before = directory.path.read_bytes()
    for _ in range(2):
        result = sync.sync_now().merge
        assert result is not None and not result.applied and result.version == 7
    assert directory.path.read_bytes() == before
    assert [m.staff_id for m in directory.members()] == ["S0012"]
    assert len(audit.entries) == 1


def test_lockouts_survive_a_merge(directory: StaffDirectory) -> None:
    source = Source(answer(1, member("S0012", "李敏")), answer(2, member("S0012", "李敏敏")))
    sync = StaffSync(directory, source)
    sync.sync_now()
    for _ in range(3):
        with pytest.raises((SignInRefused, SignInLocked)):
            directory.sign_in("S0012", OTHER_PIN)
    failures = read(directory)["failures"]["S0012"]
    assert failures["count"] == 3

    result = sync.sync_now().merge
    assert result is not None and result.changed == 1  # the name changed
    assert read(directory)["failures"]["S0012"] == failures
    with pytest.raises(SignInLocked):
        directory.sign_in("S0012", PIN)  # still locked, even with the right PIN


def test_the_audit_entry_holds_counts_only(directory: StaffDirectory) -> None:
    directory.add("L0001", "赵强", LOCAL_PIN)
    audit = Audit()
    source = Source(answer(1, member("S0012", "李敏"), member("S0013", "王芳")))
    StaffSync(directory, source, audit=audit).sync_now()
    assert audit.entries == [
        (
            STAFF_LIST_UPDATED,
            "",
            {"version": 1, "added": 2, "changed": 0, "removed": 0, "count": 2},
        )
    ]
    text = json.dumps(audit.entries, ensure_ascii=False)
    for secret in ("李敏", "王芳", "赵强", "S0012", PIN):
        assert secret not in text


# -- when it is asked ----------------------------------------------------------------------------


def test_the_platform_is_asked_at_most_every_interval(directory: StaffDirectory) -> None:
    clock = Clock()
    source = Source(answer(1, member("S0012", "李敏")))
    sync = StaffSync(directory, source, clock=clock, interval_s=600)
    assert sync.maybe_sync() is not None
    clock.now += 599
    assert sync.maybe_sync() is None
    assert source.calls == 1
    clock.now += 1
    assert sync.maybe_sync() is not None
    assert source.calls == 2
    sync.sync_now()  # on demand: at once, whatever the interval
    assert source.calls == 3


def test_a_platform_away_changes_nothing_and_is_tried_an_interval_later(
    directory: StaffDirectory,
) -> None:
    directory.add("L0001", "赵强", LOCAL_PIN)
    before = directory.path.read_bytes()
    clock = Clock()
    away = PlatformUnreachable(PlatformUnreachable.MESSAGE, code="connection_failed")
    source = Source(away, answer(1, member("S0012", "李敏")))
    sync = StaffSync(directory, source, clock=clock, interval_s=600)
    result = sync.maybe_sync()
    assert result is not None and result.merge is None
    assert result.error_code == "connection_failed"
    assert directory.path.read_bytes() == before
    assert sync.maybe_sync() is None
    clock.now += 600
    later = sync.maybe_sync()
    assert later is not None and later.merge is not None and later.merge.added == 1


def test_the_sentences_are_translated() -> None:
    set_language("zh_CN")
    try:
        from kiosk.i18n import _
        from kiosk.staff_sync import MergeResult, SyncResult

        assert _(SIGNED_OUT_REMOVED) != SIGNED_OUT_REMOVED
        updated = describe(SyncResult(MergeResult(True, 2, added=1, removed=3)))
        assert "1" in updated and "3" in updated and updated.isascii() is False
        assert describe(SyncResult(MergeResult(False, 2))).isascii() is False
        failed = describe(SyncResult(None, "connection_failed"))
        assert "connection_failed" in failed and failed.isascii() is False
    finally:
        set_language("en")


# -- who is signed in ----------------------------------------------------------------------------


def withdrawn(sessions: StaffSessions) -> bool:
    """Asked afresh each time (a property read twice is taken as unchanged by mypy)."""
    return sessions.ended_by_withdrawal


def test_a_member_taken_off_the_list_is_signed_out_at_the_next_action() -> None:
    clock = Clock()
    sessions = StaffSessions(clock=clock, idle_s=600)
    sessions.sign_in(StaffSession("S0012", "李敏", 0.0))
    sessions.withdraw({"S0099"})  # someone else
    assert sessions.current() is not None
    sessions.withdraw({"S0012"})
    sessions.touch()
    assert sessions.current() is None
    assert withdrawn(sessions)
    # Signed in again (the PIN checked against the list as it is then): counts again.
    sessions.sign_in(StaffSession("S0012", "李敏", 1.0))
    assert sessions.current() is not None and not withdrawn(sessions)
    sessions.sign_out()
    assert not withdrawn(sessions)


def test_removal_on_the_platform_reaches_the_signed_in_session(
    directory: StaffDirectory,
) -> None:
    sessions = StaffSessions(clock=Clock(), idle_s=600)
    source = Source(answer(1, member("S0012", "李敏")), answer(2))
    sync = StaffSync(directory, source, on_removed=sessions.withdraw)
    sync.sync_now()
    sessions.sign_in(directory.sign_in("S0012", PIN))
    sync.sync_now()
    assert sessions.current() is None and sessions.ended_by_withdrawal
