"""The hall's staff list set in the platform's back office and taken by a terminal, over real
HTTP on 127.0.0.1; and the audit entries of bundle exports and imports."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI

import refplatform.server
from kiosk.audit_log import AUDIT_FILE, AuditLog, verify
from kiosk.bundles import export_to, import_from
from kiosk.config import Config, Mode
from kiosk.staff import (
    SignInRefused,
    StaffDirectory,
    StaffSession,
    StaffSessions,
    pin_hash_matches,
)
from kiosk.staff_sync import SOURCE_PLATFORM, PlatformStaffSource, StaffSync
from kiosk.terminal_auth import TerminalIdentity
from kiosk.trust import seal
from offline_queue.keys import load_outbox_key
from offline_queue.outbox import Outbox, new_item_id
from refplatform.app import create_app
from refplatform.models import ErrorBody
from refplatform.server import RunningPlatform, start_in_thread
from refplatform.staff import (
    BACK_OFFICE_STAFF_PATH,
    STAFF_PATH,
    StaffRoute,
    StaffStore,
    add_staff_routes,
)
from tests.fixtures.child import run_child
from tests.fixtures.platform import DEMO_CATALOGUE, client_for, enrol_terminal, signed_session

TIMEOUT = 10
PIN = "204871"
OTHER_PIN = "739205"
LOCAL_PIN = "581937"


def _with_staff_routes(create_app: Callable[..., FastAPI]) -> Callable[..., FastAPI]:
    """create_app with the staff routes added as refplatform/app.py is to add them, unless it
    has them already (then this changes nothing)."""

    def create(db_path: Path, *args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(db_path, *args, **kwargs)
        paths = {getattr(route, "path", None) for route in app.routes}
        if STAFF_PATH in paths:
            return app
        health = next(r for r in app.routes if getattr(r, "path", None) == "/api/v1/health")
        platform = health.endpoint.__self__  # type: ignore[attr-defined]  # the handlers' owner
        staff = StaffRoute(
            store=StaffStore(db_path),
            signed=platform._signed,
            run=platform.run,
            error=_error_answer,
            answer=_json_answer,
            back_office_refusal=platform._back_office_refusal,
            now=platform.now,
        )
        add_staff_routes(app, staff, ErrorBody)
        return app

    return create


def _error_answer(status: int, code: str, detail: str) -> Any:
    from refplatform.app import _error

    return _error(status, code, detail)


def _json_answer(status: int, obj: object) -> Any:
    from refplatform.app import _json

    return _json(status, obj)


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningPlatform]:
    monkeypatch.setattr(refplatform.server, "create_app", _with_staff_routes(create_app))
    with start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def put_staff(
    platform: RunningPlatform, http: requests.Session, staff: list[dict[str, str]], **headers: str
) -> requests.Response:
    return http.put(
        platform.base_url + BACK_OFFICE_STAFF_PATH,
        json={"staff": staff},
        headers=headers or platform.back_office_headers,
        timeout=TIMEOUT,
    )


# -- the platform's routes -----------------------------------------------------------------------


def test_only_the_back_office_sets_the_list(
    platform: RunningPlatform, http: requests.Session
) -> None:
    staff = [{"staff_id": "S0012", "name": "李敏", "pin": PIN}]
    missing = http.put(platform.base_url + BACK_OFFICE_STAFF_PATH, json={"staff": staff})
    assert missing.status_code == 401 and missing.json()["error"] == "credentials_missing"
    wrong = put_staff(platform, http, staff, Authorization="Bearer " + "x" * 43)
    assert wrong.status_code == 401 and wrong.json()["error"] == "token_invalid"
    with sqlite3.connect(platform.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM staff_members").fetchone()[0] == 0


def test_the_platform_keeps_and_serves_only_pin_hashes(
    platform: RunningPlatform, http: requests.Session, tmp_path: Path
) -> None:
    answer = put_staff(
        platform,
        http,
        [
            {"staff_id": "s0012", "name": " 李敏 ", "pin": PIN},
            {"staff_id": "S0013", "name": "王芳", "pin": OTHER_PIN},
        ],
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"version": 1, "count": 2}
    assert PIN not in answer.text

    unsigned = http.get(platform.base_url + STAFF_PATH, timeout=TIMEOUT)
    assert unsigned.status_code == 401

    with signed_session(platform, tmp_path / "k01") as terminal:
        served = terminal.get(platform.base_url + STAFF_PATH, timeout=TIMEOUT)
    assert served.status_code == 200, served.text
    doc = served.json()
    assert doc["version"] == 1
    assert [(m["staff_id"], m["name"]) for m in doc["staff"]] == [
        ("S0012", "李敏"),
        ("S0013", "王芳"),
    ]
    first = doc["staff"][0]["pin_hash"]
    assert first["scrypt"] == {"n": 2**14, "r": 8, "p": 1}
    assert pin_hash_matches(first, PIN) and not pin_hash_matches(first, OTHER_PIN)
    assert PIN not in served.text and OTHER_PIN not in served.text
    # Not in the database either, in any table, journal or not.
    for path in platform.db_path.parent.glob(platform.db_path.name + "*"):
        data = path.read_bytes()
        assert PIN.encode() not in data and OTHER_PIN.encode() not in data


def test_a_member_given_without_a_pin_keeps_the_one_it_has(
    platform: RunningPlatform, http: requests.Session, tmp_path: Path
) -> None:
    put_staff(platform, http, [{"staff_id": "S0012", "name": "李敏", "pin": PIN}])
    kept = put_staff(platform, http, [{"staff_id": "S0012", "name": "李敏敏"}])
    assert kept.json() == {"version": 2, "count": 1}
    new_without_pin = put_staff(
        platform, http, [{"staff_id": "S0012", "name": "李敏"}, {"staff_id": "S0014", "name": "周"}]
    )
    assert new_without_pin.status_code == 422
    assert new_without_pin.json()["fields"] == [{"field": "staff.1.pin", "code": "required"}]
    with signed_session(platform, tmp_path / "k01") as terminal:
        doc = terminal.get(platform.base_url + STAFF_PATH, timeout=TIMEOUT).json()
    assert doc["version"] == 2  # the refused PUT changed nothing
    assert [(m["staff_id"], m["name"]) for m in doc["staff"]] == [("S0012", "李敏敏")]
    assert pin_hash_matches(doc["staff"][0]["pin_hash"], PIN)


def test_a_list_with_a_wrong_member_is_refused_whole(
    platform: RunningPlatform, http: requests.Session
) -> None:
    answer = put_staff(
        platform,
        http,
        [
            {"staff_id": "S0012", "name": "李敏", "pin": PIN},
            {"staff_id": "S-13", "name": "王芳", "pin": OTHER_PIN},
            {"staff_id": "S0014", "name": "周", "pin": "123456"},
            {"staff_id": "S0012", "name": "", "pin": "13800"},
        ],
    )
    assert answer.status_code == 422
    assert answer.json()["fields"] == [
        {"field": "staff.1.staff_id", "code": "pattern"},
        {"field": "staff.2.pin", "code": "weak"},
        {"field": "staff.3.staff_id", "code": "duplicate"},
        {"field": "staff.3.name", "code": "pattern"},
        {"field": "staff.3.pin", "code": "weak"},
    ]
    assert PIN not in answer.text and "13800" not in answer.text
    not_json = http.put(
        platform.base_url + BACK_OFFICE_STAFF_PATH,
        data=b"{",
        headers=platform.back_office_headers,
        timeout=TIMEOUT,
    )
    assert not_json.status_code == 400
    with sqlite3.connect(platform.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM staff_list").fetchone()[0] == 0


def test_a_revoked_terminal_gets_no_staff_list(
    platform: RunningPlatform, http: requests.Session, tmp_path: Path
) -> None:
    put_staff(platform, http, [{"staff_id": "S0012", "name": "李敏", "pin": PIN}])
    with signed_session(platform, tmp_path / "k01") as terminal:
        revoked = http.post(
            f"{platform.base_url}/api/v1/terminals/K01/revoke",
            headers=platform.back_office_headers,
            timeout=TIMEOUT,
        )
        assert revoked.status_code == 200
        answer = terminal.get(platform.base_url + STAFF_PATH, timeout=TIMEOUT)
    assert answer.status_code == 403
    assert "S0012" not in answer.text


# -- the terminal --------------------------------------------------------------------------------


def test_a_terminal_signs_in_with_a_pin_provisioned_on_the_platform(
    platform: RunningPlatform, http: requests.Session, tmp_path: Path
) -> None:
    data_dir = tmp_path / "c01"
    identity = enrol_terminal(platform, data_dir, "C01")
    client = client_for(platform, identity)
    directory = StaffDirectory(data_dir)
    directory.add("L0001", "赵强", LOCAL_PIN)  # added here with --add-staff
    with pytest.raises(SignInRefused):
        directory.sign_in("S0012", PIN)  # not provisioned yet
    audit = AuditLog.in_data_dir(data_dir, identity.key)
    sessions = StaffSessions(idle_s=600)
    sync = StaffSync(
        directory, PlatformStaffSource(client), audit=audit, on_removed=sessions.withdraw
    )
    try:
        put_staff(platform, http, [{"staff_id": "S0012", "name": "李敏", "pin": PIN}])
        result = sync.sync_now()
        assert result.merge is not None and result.merge.added == 1, result

        session = directory.sign_in("S0012", PIN)
        assert isinstance(session, StaffSession) and session.name == "李敏"
        sessions.sign_in(session)
        assert directory.sign_in("L0001", LOCAL_PIN).staff_id == "L0001"
        kept = json.loads(directory.path.read_text("utf-8"))["members"]
        assert kept["S0012"]["source"] == SOURCE_PLATFORM and "source" not in kept["L0001"]

        # Taken off the list on the platform: gone here at the next sync, and whoever is
        # signed in with it is signed out at their next action.
        put_staff(platform, http, [])
        assert sync.sync_now().merge is not None
        with pytest.raises(SignInRefused):
            directory.sign_in("S0012", PIN)
        sessions.touch()
        assert sessions.current() is None and sessions.ended_by_withdrawal
        assert [m.staff_id for m in directory.members()] == ["L0001"]
        assert sync.sync_now().merge is not None  # the same version again: nothing to do
        entries = audit.entries()
    finally:
        audit.close()
        client.close()
    assert [(e.kind, e.details) for e in entries] == [
        (
            "staff_list_updated",
            {"version": 1, "added": 1, "changed": 0, "removed": 0, "count": 1},
        ),
        (
            "staff_list_updated",
            {"version": 2, "added": 0, "changed": 0, "removed": 1, "count": 0},
        ),
    ]
    assert verify(data_dir / AUDIT_FILE, identity.key.public_key()).ok


# -- bundles in the audit log --------------------------------------------------------------------


def _config(platform: RunningPlatform, data_dir: Path, terminal_id: str) -> Config:
    return Config(
        mode=Mode.RURAL,
        terminal_id=terminal_id,
        platform_url=platform.base_url,
        data_dir=data_dir,
        outbox_key_store="file",
    )


def _queue_sealed(config: Config, identity: TerminalIdentity, count: int) -> list[str]:
    """Rows as a village terminal queues them (sealed; their insides do not matter here)."""
    recipient = identity.enrolment.sealing_public_key()
    assert recipient is not None
    key = load_outbox_key(config.outbox_path, config.key_path, "file")
    ids = []
    with Outbox(config.outbox_path, key.key) as outbox:
        for _ in range(count):
            item_id = new_item_id()
            sealed = seal(b"{}", recipient, item_id.encode("utf-8"))
            payload = json.dumps({"submission_id": item_id, "sealed": sealed}).encode()
            outbox.enqueue("submission", payload, b"{}", item_id=item_id)
            ids.append(item_id)
    return ids


def _audit_entries(
    data_dir: Path, identity: TerminalIdentity
) -> list[tuple[str, Mapping[str, Any]]]:
    assert verify(data_dir / AUDIT_FILE, identity.key.public_key()).ok
    log = AuditLog.in_data_dir(data_dir, identity.key)
    try:
        return [(e.kind, e.details) for e in log.entries()]
    finally:
        log.close()


def test_exports_and_imports_are_in_the_audit_log(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    village_dir, hall_dir = tmp_path / "village", tmp_path / "hall"
    village = enrol_terminal(platform, village_dir, "V01")
    hall = enrol_terminal(platform, hall_dir, "H01")
    village_config = _config(platform, village_dir, "V01")
    hall_config = _config(platform, hall_dir, "H01")
    path = tmp_path / "v.bundle"

    done, _ = export_to(village_config, path)
    assert not done  # nothing waits yet
    _queue_sealed(village_config, village, 3)
    done, _ = export_to(village_config, path)
    assert done
    bundle_id = json.loads(path.read_bytes())["bundle_id"]
    for _attempt in range(2):
        done, _ = import_from(hall_config, path)
        assert done
    path.write_bytes(path.read_bytes().replace(b'"V01"', b'"V02"'))
    done, _ = import_from(hall_config, path)
    assert not done

    assert _audit_entries(village_dir, village) == [
        ("bundle_exported", {"result": "bundle_empty"}),
        ("bundle_exported", {"result": "exported", "bundle_id": bundle_id, "count": 3}),
    ]
    assert _audit_entries(hall_dir, hall) == [
        ("bundle_imported", {"result": "imported", "bundle_id": bundle_id, "count": 3}),
        ("bundle_imported", {"result": "already_imported", "bundle_id": bundle_id, "count": 3}),
        ("bundle_imported", {"result": "bundle_signature_invalid"}),
    ]


def test_a_command_refused_for_a_busy_queue_is_in_the_audit_log(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    hall_dir = tmp_path / "hall"
    hall = enrol_terminal(platform, hall_dir, "H01")
    config = _config(platform, hall_dir, "H01")
    key = load_outbox_key(config.outbox_path, config.key_path, "file")
    script = (
        "import sys; from pathlib import Path; from kiosk.config import Config, Mode;"
        " from kiosk.bundles import import_from;"
        " config = Config(mode=Mode.RURAL, terminal_id='H01', platform_url=sys.argv[1],"
        " data_dir=Path(sys.argv[2]), outbox_key_store='file');"
        " print(import_from(config, Path(sys.argv[3]))[0])"
    )
    with Outbox(config.outbox_path, key.key):  # the terminal is running, in another process
        child = run_child(
            ["-c", script, platform.base_url, str(hall_dir), str(tmp_path / "absent.bundle")]
        )
    assert child.stdout.strip() == "False", child.stderr
    assert _audit_entries(hall_dir, hall) == [
        ("bundle_imported", {"result": "outbox_locked"}),
    ]
