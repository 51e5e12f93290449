"""Staff sign-in: the directory, lockouts kept across restarts, idle sign-out, the commands."""

from __future__ import annotations

import io
import json
import logging
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.i18n import set_language
from kiosk.staff import (
    DEFAULT_COST,
    LOCK_FIRST_S,
    LOCK_MAX_S,
    STAFF_FILE,
    BadStaffId,
    BadStaffName,
    NoStaff,
    ScryptCost,
    SignInLocked,
    SignInRefused,
    StaffDirectory,
    StaffListUnreadable,
    StaffSession,
    StaffSessions,
    WeakPin,
    add_staff_command,
    console_pin_reader,
    list_staff_command,
    lock_wait_s,
    remove_staff_command,
)

CHEAP = ScryptCost(n=2**4, r=1, p=1)  # the real cost is 2**14; tests only need the rules
PIN = "204871"
OTHER_PIN = "739205"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingCost(ScryptCost):
    """Counts scrypt runs, to show every path does the same work."""

    runs: int = 0

    def hash(self, pin: str, salt: bytes) -> bytes:
        CountingCost.runs += 1
        return super().hash(pin, salt)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(tmp_path: Path, clock: Clock) -> StaffDirectory:
    staff = StaffDirectory(tmp_path, clock=clock, cost=CHEAP)
    staff.add("S0012", "李敏", PIN)
    return staff


def _refusal(directory: StaffDirectory, staff_id: str, pin: str) -> SignInRefused | SignInLocked:
    with pytest.raises((SignInRefused, SignInLocked)) as caught:
        directory.sign_in(staff_id, pin)
    assert isinstance(caught.value, SignInRefused | SignInLocked)
    return caught.value


def test_a_member_signs_in_with_the_right_pin(directory: StaffDirectory, clock: Clock) -> None:
    session = directory.sign_in("s0012", PIN)  # the number is not case-sensitive
    assert session == StaffSession("S0012", "李敏", clock.now)


def test_the_default_cost_is_the_agreed_scrypt() -> None:
    assert (DEFAULT_COST.n, DEFAULT_COST.r, DEFAULT_COST.p) == (2**14, 8, 1)
    assert len(DEFAULT_COST.hash(PIN, b"s" * 16)) == 32


def test_a_wrong_pin_and_an_unknown_number_get_the_same_refusal(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cost = CountingCost(n=2**4, r=1, p=1)
    directory = StaffDirectory(tmp_path, clock=clock, cost=cost)
    directory.add("S0012", "李敏", PIN)
    directory.add("S0013", "王芳", OTHER_PIN)
    directory.deactivate("S0013")

    writes: list[object] = []
    write = StaffDirectory._write

    def counted_write(self: StaffDirectory, data: dict[str, object]) -> None:
        writes.append(data)
        write(self, data)

    monkeypatch.setattr(StaffDirectory, "_write", counted_write)
    answers = []
    for staff_id, pin in (("S0012", OTHER_PIN), ("S9999", PIN), ("S0013", OTHER_PIN), ("", PIN)):
        before, written = CountingCost.runs, len(writes)
        refusal = _refusal(directory, staff_id, pin)
        # one scrypt run and one file write whatever the number
        assert (CountingCost.runs - before, len(writes) - written) == (1, 1), staff_id
        answers.append((type(refusal), str(refusal)))
    assert len(set(answers)) == 1
    assert answers[0] == (SignInRefused, "工号或密码不正确，请重新输入。")


def test_an_unknown_number_is_locked_like_a_known_one(directory: StaffDirectory) -> None:
    for staff_id in ("S0012", "S9999"):
        for _ in range(2):
            assert isinstance(_refusal(directory, staff_id, OTHER_PIN), SignInRefused)
        third = _refusal(directory, staff_id, OTHER_PIN)
        assert isinstance(third, SignInLocked)
        assert third.wait_s == LOCK_FIRST_S


def test_the_lockout_grows_and_caps(directory: StaffDirectory, clock: Clock) -> None:
    waits = []
    for _ in range(10):
        refusal = _refusal(directory, "S0012", OTHER_PIN)
        waits.append(refusal.wait_s if isinstance(refusal, SignInLocked) else 0)
        clock.now += max(waits[-1], 1)  # wait it out, then fail again
    assert waits == [0, 0, 30, 60, 120, 240, 480, 900, 900, 900]
    assert [lock_wait_s(n) for n in (2, 3, 4, 100)] == [
        0,
        LOCK_FIRST_S,
        2 * LOCK_FIRST_S,
        LOCK_MAX_S,
    ]


def test_while_locked_even_the_right_pin_is_refused_with_the_wait(
    directory: StaffDirectory, clock: Clock
) -> None:
    for _ in range(3):
        _refusal(directory, "S0012", OTHER_PIN)
    clock.now += 10
    locked = _refusal(directory, "S0012", PIN)
    assert isinstance(locked, SignInLocked)
    assert locked.wait_s == 20
    assert str(locked) == "输错次数过多，请等待 20 秒后再试。"
    set_language("en")
    assert str(locked) == "Too many wrong tries. Please wait 20 seconds and try again."

    clock.now += 20
    assert directory.sign_in("S0012", PIN).staff_id == "S0012"


def test_a_long_wait_is_said_in_minutes(directory: StaffDirectory, clock: Clock) -> None:
    for _ in range(6):
        _refusal(directory, "S0012", OTHER_PIN)
        clock.now += LOCK_MAX_S
    locked = _refusal(directory, "S0012", OTHER_PIN)  # the 7th: 480 s
    assert isinstance(locked, SignInLocked)
    assert str(locked) == "输错次数过多，请等待 8 分钟后再试。"


def test_a_success_resets_the_count(directory: StaffDirectory, clock: Clock) -> None:
    for _ in range(3):
        _refusal(directory, "S0012", OTHER_PIN)
    clock.now += LOCK_FIRST_S
    directory.sign_in("S0012", PIN)
    # Two more failures are not a lockout: the count started again.
    assert isinstance(_refusal(directory, "S0012", OTHER_PIN), SignInRefused)
    assert isinstance(_refusal(directory, "S0012", OTHER_PIN), SignInRefused)
    assert isinstance(_refusal(directory, "S0012", OTHER_PIN), SignInLocked)


def test_the_lockout_survives_a_restart(
    directory: StaffDirectory, tmp_path: Path, clock: Clock
) -> None:
    for _ in range(4):
        _refusal(directory, "S0012", OTHER_PIN)
        clock.now += LOCK_MAX_S
    clock.now -= LOCK_MAX_S  # just after the 4th failure: 60 s to wait
    restarted = StaffDirectory(tmp_path, clock=clock, cost=CHEAP)
    locked = _refusal(restarted, "S0012", PIN)
    assert isinstance(locked, SignInLocked)
    assert locked.wait_s == 60
    clock.now += 60
    # and the count did too: the next failure waits 120 s
    nxt = _refusal(restarted, "S0012", OTHER_PIN)
    assert isinstance(nxt, SignInLocked)
    assert nxt.wait_s == 120


def test_a_clock_set_back_cannot_lock_for_longer_than_the_cap(
    directory: StaffDirectory, clock: Clock
) -> None:
    for _ in range(3):
        _refusal(directory, "S0012", OTHER_PIN)
    clock.now -= 86_400  # someone set the clock back a day
    locked = _refusal(directory, "S0012", PIN)
    assert isinstance(locked, SignInLocked)
    assert locked.wait_s <= LOCK_MAX_S


def test_replacing_a_member_clears_its_lockout(directory: StaffDirectory) -> None:
    for _ in range(3):
        _refusal(directory, "S0012", OTHER_PIN)
    assert directory.add("S0012", "李敏", OTHER_PIN) is False  # replaced, not new
    assert directory.sign_in("S0012", OTHER_PIN).name == "李敏"
    assert isinstance(_refusal(directory, "S0012", PIN), SignInRefused)  # the old PIN is gone


def test_a_deactivated_member_cannot_sign_in(directory: StaffDirectory) -> None:
    directory.add("S0013", "王芳", OTHER_PIN)
    assert directory.deactivate("S0013") is True
    assert isinstance(_refusal(directory, "S0013", OTHER_PIN), SignInRefused)
    assert [m.staff_id for m in directory.members()] == ["S0012"]
    assert directory.deactivate("S0404") is False
    directory.add("S0013", "王芳", OTHER_PIN)  # added again: active again
    assert directory.sign_in("S0013", OTHER_PIN).staff_id == "S0013"


def test_members_lists_numbers_and_names(directory: StaffDirectory) -> None:
    directory.add("A7", "张 伟", OTHER_PIN)
    assert [(m.staff_id, m.name) for m in directory.members()] == [
        ("A7", "张 伟"),
        ("S0012", "李敏"),
    ]


@pytest.mark.parametrize(
    "pin",
    [
        "12345",
        "1234567890123",
        "20487a",
        " 204871",
        "000000",
        "121212",
        "123456",
        "654321",
        "890123",
        "001200",
    ],
)
def test_weak_pins_are_refused(tmp_path: Path, pin: str) -> None:
    directory = StaffDirectory(tmp_path, cost=CHEAP)
    with pytest.raises(WeakPin):
        directory.add("S001200", "李敏", pin)
    assert not (tmp_path / STAFF_FILE).exists()


@pytest.mark.parametrize("staff_id", ["", "S-12", "S0012345678901234", "工号1"])
def test_bad_numbers_are_refused(tmp_path: Path, staff_id: str) -> None:
    with pytest.raises(BadStaffId):
        StaffDirectory(tmp_path, cost=CHEAP).add(staff_id, "李敏", PIN)


@pytest.mark.parametrize("name", ["", "   ", "李" * 33, "李\x07敏"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadStaffName):
        StaffDirectory(tmp_path, cost=CHEAP).add("S0012", name, PIN)


def test_files_are_private_and_hold_no_pin(
    directory: StaffDirectory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    directory.add("S0013", "王芳", OTHER_PIN)
    _refusal(directory, "S0012", "551892")
    _refusal(directory, "663018", PIN)  # a PIN typed into the number field
    directory.sign_in("S0013", OTHER_PIN)

    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        text = path.read_text("utf-8")
        for secret in (PIN, OTHER_PIN, "551892", "663018"):
            assert secret not in text, (path.name, secret)
    for secret in (PIN, OTHER_PIN, "551892", "663018"):
        assert secret not in caplog.text
    assert "S0012" in caplog.text  # the log does name staff numbers
    assert "王芳" not in caplog.text  # but not names
    kept = json.loads((tmp_path / STAFF_FILE).read_text("utf-8"))
    assert set(kept["failures"]) == {"S0012"}  # the number nobody has is not kept
    assert kept["failures"]["S0012"]["count"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_no_members_at_all_is_said_so(tmp_path: Path) -> None:
    with pytest.raises(NoStaff):
        StaffDirectory(tmp_path, cost=CHEAP).sign_in("S0012", PIN)


def test_a_damaged_list_is_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / STAFF_FILE).write_text("{not json", "utf-8")
    directory = StaffDirectory(tmp_path, cost=CHEAP)
    with pytest.raises(StaffListUnreadable):
        directory.sign_in("S0012", PIN)
    with pytest.raises(StaffListUnreadable):
        directory.add("S0012", "李敏", PIN)
    assert (tmp_path / STAFF_FILE).read_text("utf-8") == "{not json"


def test_a_member_added_elsewhere_counts_at_once(directory: StaffDirectory, tmp_path: Path) -> None:
    StaffDirectory(tmp_path, cost=CHEAP).add("S0020", "赵强", OTHER_PIN)  # the command line
    assert directory.sign_in("S0020", OTHER_PIN).name == "赵强"


# -- who is signed in now ----------------------------------------------------------------------


def test_idle_sign_out(clock: Clock) -> None:
    sessions = StaffSessions(clock, idle_s=300)
    assert sessions.current() is None
    session = StaffSession("S0012", "李敏", clock.now)
    sessions.sign_in(session)
    clock.now += 299
    assert sessions.current() == session
    sessions.touch()  # activity starts the idle time again
    clock.now += 299
    attributed_to = sessions.operator_id
    assert attributed_to == "S0012"
    assert sessions.remaining_s() == pytest.approx(1)
    clock.now += 1
    assert sessions.current() is None
    assert sessions.operator_id is None
    sessions.touch()  # touching after the sign-out does not bring anyone back
    assert sessions.current() is None


def test_sign_out(clock: Clock) -> None:
    sessions = StaffSessions(clock, idle_s=300)
    session = StaffSession("S0012", "李敏", clock.now)
    sessions.sign_in(session)
    assert sessions.sign_out() == session
    assert sessions.current() is None
    assert sessions.sign_out() is None


# -- the command line --------------------------------------------------------------------------


def _reader(answers: list[str]) -> Callable[[str], str]:
    def read(prompt: str) -> str:
        assert prompt.strip()
        return answers.pop(0)

    return read


def test_add_staff_command(tmp_path: Path, clock: Clock) -> None:
    done, sentence = add_staff_command(tmp_path, "s0012", "李敏", _reader([PIN, PIN]), cost=CHEAP)
    assert done, sentence
    assert sentence == "S0012（李敏）现在可以在本终端登录。"
    assert StaffDirectory(tmp_path, clock=clock).sign_in("S0012", PIN).name == "李敏"

    set_language("en")
    done, sentence = add_staff_command(
        tmp_path, "S0012", "李敏", _reader([OTHER_PIN, OTHER_PIN]), cost=CHEAP
    )
    assert (done, sentence) == (True, "S0012 (李敏) was updated: the new PIN counts from now on.")


def test_add_staff_command_refuses_without_changing_anything(tmp_path: Path) -> None:
    cases = [
        ("S0012", "李敏", [PIN, OTHER_PIN], "两次输入的密码不一致，未做任何更改。"),
        ("S0012", "李敏", ["123456"], "密码为 6 至 12 位数字"),
        ("S0012", "李敏", [""], "没有输入密码，未做任何更改。"),
        ("S-12", "李敏", [], "工号由 1 至 16 位字母或数字组成"),
        ("S0012", "", [], "请填写工作人员在屏幕上显示的姓名"),
    ]
    for staff_id, name, answers, said in cases:
        done, sentence = add_staff_command(tmp_path, staff_id, name, _reader(answers), cost=CHEAP)
        assert not done
        assert sentence.startswith(said), sentence
    assert not (tmp_path / STAFF_FILE).exists()


def test_a_script_gives_the_pin_once_on_stdin(tmp_path: Path) -> None:
    read = console_pin_reader(io.StringIO(PIN + "\n"))
    done, sentence = add_staff_command(tmp_path, "S0012", "李敏", read, cost=CHEAP)
    assert done, sentence
    assert StaffDirectory(tmp_path).sign_in("S0012", PIN).staff_id == "S0012"
    done, sentence = add_staff_command(
        tmp_path, "S0013", "王芳", console_pin_reader(io.StringIO("")), cost=CHEAP
    )
    assert (done, sentence) == (False, "没有输入密码，未做任何更改。")


def test_remove_and_list_staff_commands(tmp_path: Path) -> None:
    assert list_staff_command(tmp_path) == (True, "本终端目前还没有可以登录的工作人员。")
    directory = StaffDirectory(tmp_path, cost=CHEAP)
    directory.add("S0012", "李敏", PIN)
    directory.add("A7", "王芳", OTHER_PIN)
    assert list_staff_command(tmp_path) == (True, "A7     王芳\nS0012  李敏")
    assert remove_staff_command(tmp_path, "a7") == (True, "A7 已不能在本终端登录。")
    assert list_staff_command(tmp_path) == (True, "S0012  李敏")
    assert remove_staff_command(tmp_path, "S0404") == (
        False,
        "本终端没有工号为 S0404 的工作人员。",
    )
    (tmp_path / STAFF_FILE).write_text("[]", "utf-8")
    done, sentence = list_staff_command(tmp_path)
    assert (done, sentence) == (False, "本终端的工作人员名单无法读取，请联系管理员。")
