"""Bundles end to end: a village terminal no network reaches exports its waiting submissions to a
file, a hall terminal imports it and uploads it to the reference platform over real HTTP on
127.0.0.1, and the platform stores each submission once, in the village terminal's name."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.identity import Identity, Sex
from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from kiosk import bundles
from kiosk.assistance import Assistance
from kiosk.bundles import (
    BAD_SIGNATURE,
    BUNDLE_KIND,
    MALFORMED,
    BundleError,
    export_bundle,
    export_to,
    import_bundle,
    import_from,
    sign_bundle,
)
from kiosk.catalogue import load_catalogue_file
from kiosk.config import Config, Mode
from kiosk.i18n import set_language
from kiosk.platform_client import OutcomeKind, PlatformClient
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.session import Draft
from kiosk.submissions import Submitter
from kiosk.sync import SyncEngine
from kiosk.terminal_auth import TerminalIdentity
from offline_queue.keys import load_outbox_key
from offline_queue.outbox import Outbox, State
from refplatform.server import RunningPlatform
from tests.fixtures.platform import (
    DEMO_ANSWERS,
    DEMO_APPLICANT,
    DEMO_CATALOGUE,
    client_for,
    enrol_terminal,
    platform_server,  # noqa: F401 - a fixture
)

VILLAGE = "V01"
HALL = "H01"

APPLICANT = Identity(
    name=DEMO_APPLICANT["name"],
    sex=Sex.FEMALE,
    nation=DEMO_APPLICANT["nation"],
    birth_date=dt.date.fromisoformat(DEMO_APPLICANT["birth_date"]),
    address=DEMO_APPLICANT["address"],
    id_number=DEMO_APPLICANT["id_number"],
    issuing_authority="北京市公安局西城分局",
    valid_from=dt.date(2016, 5, 20),
    valid_until=None,
)


class Offline:
    """The village's uploader: no network reaches it."""

    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        return False


class Printer:
    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        return PrintResult(PrintStatus.OK)


@dataclass
class Terminal:
    config: Config
    identity: TerminalIdentity
    outbox: Outbox
    client: PlatformClient

    def sync(self) -> SyncEngine:
        return SyncEngine(self.outbox, self.client)


def _terminal(platform: RunningPlatform, data_dir: Path, terminal_id: str) -> Terminal:
    config = Config(
        mode=Mode.RURAL,
        terminal_id=terminal_id,
        platform_url=platform.base_url,
        data_dir=data_dir,
        outbox_key_store="file",
    )
    identity = enrol_terminal(platform, data_dir, terminal_id)
    key = load_outbox_key(config.outbox_path, config.key_path, "file")
    return Terminal(
        config, identity, Outbox(config.outbox_path, key.key), client_for(platform, identity)
    )


@pytest.fixture
def village(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[Terminal]:  # noqa: F811
    terminal = _terminal(platform_server, tmp_path / "village", VILLAGE)
    yield terminal
    terminal.outbox.close()
    terminal.client.close()


@pytest.fixture
def hall(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[Terminal]:  # noqa: F811
    terminal = _terminal(platform_server, tmp_path / "hall", HALL)
    yield terminal
    terminal.outbox.close()
    terminal.client.close()


SIGNATURE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def queue_submissions(village: Terminal, count: int) -> list[str]:
    """count submissions made at the village terminal as the application makes them: sealed to
    the platform's key, saved, not delivered (nothing answers there)."""
    catalogue = load_catalogue_file(DEMO_CATALOGUE)
    submitter = Submitter(
        config=village.config,
        outbox=village.outbox,
        uploader=Offline(),
        printer=Printer(),
        numbers=ReceiptNumbers(village.config.counters_path, VILLAGE),
        seal_to=village.identity.enrolment.sealing_public_key(),
    )
    ids = []
    for _ in range(count):
        draft = Draft(
            service=catalogue.service("residence-permit"),
            identity=APPLICANT,
            answers=dict(DEMO_ANSWERS["residence-permit"]),
            catalogue_version=catalogue.version,
            # made by the assistant, confirmed and signed by the applicant
            assistance=Assistance(citizen_present=True, agent=None, signature_png=SIGNATURE),
        )
        result = submitter.submit(draft, operator_id="V0001")
        assert not result.delivered
        ids.append(result.submission_id)
    return ids


def stored(platform: RunningPlatform) -> dict[str, str]:
    """submission id -> the terminal it was filed in the name of, as the platform keeps them."""
    with sqlite3.connect(platform.db_path) as db:
        rows = db.execute(
            "SELECT submission_id, json_extract(request_json, '$.terminal_id') FROM submissions"
        ).fetchall()
    return {str(sid): str(terminal) for sid, terminal in rows}


def stored_count(platform: RunningPlatform) -> int:
    with sqlite3.connect(platform.db_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])


def export(village: Terminal, path: Path) -> bundles.ExportResult:
    return export_bundle(village.outbox, village.identity.key, VILLAGE, path)


def states(outbox: Outbox) -> dict[str, State]:
    return {info.id: info.state for info in outbox.items(limit=10_000)}


# -- round trip ---------------------------------------------------------------------------------


def test_a_bundle_carries_the_village_queue_to_the_platform_through_a_hall_terminal(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    ids = queue_submissions(village, 5)
    stick = tmp_path / "stick"
    stick.mkdir()
    path = stick / "village.bundle"

    exported = export(village, path)
    assert exported.written == 5 and exported.skipped == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(stick)) == ["village.bundle"]  # nothing left beside it
    data = path.read_bytes()
    # Nothing personal can be read in the file: every item is sealed.
    personal = [v for k, v in DEMO_APPLICANT.items() if k != "sex"]  # "2" is in any file
    for secret in (*personal, DEMO_ANSWERS["residence-permit"]["phone"]):
        assert secret.encode("utf-8") not in data
        assert json.dumps(secret).encode("ascii") not in data  # nor \\u-escaped
    doc = json.loads(data)
    assert doc["format"] == "hall-bundle-v1" and doc["terminal_id"] == VILLAGE
    assert [item["submission_id"] for item in doc["items"]] == ids  # oldest first
    # The rows still wait at the village, and can still go online later.
    assert set(states(village.outbox).values()) == {State.QUEUED}

    imported = import_bundle(hall.outbox, path)
    assert (imported.items, imported.terminal_id, imported.already_imported) == (5, VILLAGE, False)
    assert [(i.kind, i.id) for i in hall.outbox.items()] == [(BUNDLE_KIND, exported.bundle_id)]

    assert hall.sync().drain_once() == 1
    assert hall.outbox.state_of(exported.bundle_id) is State.DELIVERED
    response = json.loads(hall.outbox.get_response(exported.bundle_id) or b"")
    assert response == {"bundle_id": exported.bundle_id, "delivered": 5, "refused": []}
    assert stored(platform_server) == dict.fromkeys(ids, VILLAGE)


def test_the_village_uploading_the_same_rows_later_stores_each_once(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    ids = queue_submissions(village, 3)
    path = tmp_path / "v.bundle"
    export(village, path)
    import_bundle(hall.outbox, path)
    assert hall.sync().drain_once() == 1

    # The network reaches the village at last: its rows go as they would have.
    assert village.sync().drain_once() == 3
    assert set(states(village.outbox).values()) == {State.DELIVERED}
    assert stored(platform_server) == dict.fromkeys(ids, VILLAGE)
    # And the other way round: online first, then the bundle, still once.
    more = queue_submissions(village, 2)
    later = tmp_path / "later.bundle"
    export(village, later)
    assert village.sync().drain_once() == 2
    import_bundle(hall.outbox, later)
    assert hall.sync().drain_once() == 1
    assert stored(platform_server) == dict.fromkeys([*ids, *more], VILLAGE)


def test_a_bundle_imported_twice_is_queued_and_stored_once(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    ids = queue_submissions(village, 2)
    path = tmp_path / "v.bundle"
    exported = export(village, path)

    assert not import_bundle(hall.outbox, path).already_imported
    again = import_bundle(hall.outbox, path)
    assert again.already_imported and again.bundle_id == exported.bundle_id
    assert hall.outbox.counts()[State.QUEUED.value] == 1
    assert hall.sync().drain_once() == 1
    assert import_bundle(hall.outbox, path).already_imported  # delivered: still known
    assert hall.outbox.counts()[State.QUEUED.value] == 0

    # Even once the delivered row is purged and the file queued anew, sending it again is
    # harmless: the platform answers each submission as before and stores nothing twice.
    assert hall.outbox.purge_delivered(-1.0) == 1
    assert not import_bundle(hall.outbox, path).already_imported
    assert hall.sync().drain_once() == 1
    assert stored(platform_server) == dict.fromkeys(ids, VILLAGE)


def test_overlapping_bundles_store_each_submission_once(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    first = queue_submissions(village, 3)
    export(village, tmp_path / "monday.bundle")
    second = queue_submissions(village, 2)
    wednesday = export(village, tmp_path / "wednesday.bundle")
    assert wednesday.written == 5  # the first three again: still waiting at the village

    import_bundle(hall.outbox, tmp_path / "wednesday.bundle")
    import_bundle(hall.outbox, tmp_path / "monday.bundle")
    assert hall.sync().drain_once() == 2
    assert stored(platform_server) == dict.fromkeys([*first, *second], VILLAGE)
    for info in hall.outbox.items():
        response = json.loads(hall.outbox.get_response(info.id) or b"")
        assert response["refused"] == []


# -- refusals -------------------------------------------------------------------------------------


def _rewrite(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), "utf-8")


def _flip_a_byte(doc: dict[str, Any]) -> dict[str, Any]:
    payload = json.loads(doc["items"][1]["payload"])
    text = payload["sealed"]["ciphertext"]
    payload["sealed"]["ciphertext"] = ("B" if text[10] != "B" else "C").join(
        (text[:10], text[11:])
    )
    doc["items"][1]["payload"] = json.dumps(payload, separators=(",", ":"))
    return doc


def _remove_an_item(doc: dict[str, Any]) -> dict[str, Any]:
    del doc["items"][0]
    return doc


def _change_the_terminal(doc: dict[str, Any]) -> dict[str, Any]:
    doc["terminal_id"] = HALL
    return doc


def _sign_with_another_key(doc: dict[str, Any]) -> dict[str, Any]:
    """Another key's signature, the village terminal's public key left in the file."""
    other = sign_bundle(doc, Ed25519PrivateKey.generate())
    doc["signature"] = other["signature"]
    return doc


TAMPERINGS = {
    "byte_flipped_in_an_item": _flip_a_byte,
    "item_removed": _remove_an_item,
    "terminal_id_changed": _change_the_terminal,
    "signature_by_another_key": _sign_with_another_key,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_an_altered_bundle_is_refused_at_import_and_nothing_is_queued(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
    tamper: Any,
) -> None:
    queue_submissions(village, 3)
    path = tmp_path / "v.bundle"
    export(village, path)
    _rewrite(path, tamper(json.loads(path.read_bytes())))

    with pytest.raises(BundleError) as refused:
        import_bundle(hall.outbox, path)
    assert refused.value.code == BAD_SIGNATURE
    assert hall.outbox.items() == []
    set_language("zh_CN")
    assert "不能信任" in refused.value.user_message()
    set_language("en")
    assert "cannot be trusted" in refused.value.user_message()
    assert hall.sync().drain_once() == 0
    assert stored_count(platform_server) == 0


def test_a_file_that_is_not_a_bundle_is_refused(hall: Terminal, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text('{"format": "hall-bundle-v1"}', "utf-8")
    with pytest.raises(BundleError) as refused:
        import_bundle(hall.outbox, path)
    assert refused.value.code == MALFORMED
    with pytest.raises(BundleError) as missing:
        import_bundle(hall.outbox, tmp_path / "absent.bundle")
    assert missing.value.code == bundles.UNREADABLE
    assert hall.outbox.items() == []


def _resigned_by_another_key(path: Path) -> Ed25519PrivateKey:
    """The bundle at path signed again by a key of its own, carried in the file: it verifies
    with the key it carries, so only the platform can tell it is not the village terminal's."""
    forger = Ed25519PrivateKey.generate()
    _rewrite(path, sign_bundle(json.loads(path.read_bytes()), forger))
    return forger


def test_the_platform_refuses_a_bundle_signed_by_a_key_not_enrolled_for_its_terminal(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    queue_submissions(village, 3)
    path = tmp_path / "v.bundle"
    exported = export(village, path)
    _resigned_by_another_key(path)
    import_bundle(hall.outbox, path)  # consistent with itself, so taken here

    assert hall.sync().drain_once() == 0
    assert hall.outbox.state_of(exported.bundle_id) is State.REJECTED
    assert hall.outbox.items()[0].last_error == "bundle_signature_invalid"
    assert stored_count(platform_server) == 0


def test_the_platform_refuses_a_bundle_of_a_revoked_or_unknown_terminal(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    ids = queue_submissions(village, 2)
    path = tmp_path / "v.bundle"
    export(village, path)
    data = path.read_bytes()
    with requests.post(
        f"{platform_server.base_url}/api/v1/terminals/{VILLAGE}/revoke",
        headers=platform_server.back_office_headers,
        timeout=10,
    ) as answer:
        assert answer.status_code == 200
    bundle_id = json.loads(data)["bundle_id"]
    outcome = hall.client.send_bundle(bundle_id, data, ids)
    assert (outcome.kind, outcome.error_code) == (OutcomeKind.REJECTED, "bundle_signer_revoked")

    doc = json.loads(data)
    doc["terminal_id"] = "V99"  # nobody enrolled it
    unknown = json.dumps(sign_bundle(doc, village.identity.key)).encode()
    outcome = hall.client.send_bundle(bundle_id, unknown, ids)
    assert (outcome.kind, outcome.error_code) == (OutcomeKind.REJECTED, "bundle_signer_unknown")
    assert stored_count(platform_server) == 0


def test_the_platform_checks_the_signature_itself_and_each_item_belongs_to_the_village(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    """What a hall terminal that skipped its own check would send is still refused."""
    ids = queue_submissions(village, 3)
    path = tmp_path / "v.bundle"
    export(village, path)
    doc = json.loads(path.read_bytes())
    flipped = json.dumps(_flip_a_byte(json.loads(json.dumps(doc)))).encode()
    outcome = hall.client.send_bundle(doc["bundle_id"], flipped, ids)
    assert (outcome.kind, outcome.error_code) == (OutcomeKind.REJECTED, "bundle_signature_invalid")
    assert stored_count(platform_server) == 0

    # The hall terminal signs its own bundle naming itself, with submissions sealed for the
    # village: each item names another terminal than the bundle, so each is refused for good.
    doc["terminal_id"] = HALL
    own = json.dumps(sign_bundle(doc, hall.identity.key)).encode()
    outcome = hall.client.send_bundle(doc["bundle_id"], own, ids)
    assert outcome.kind is OutcomeKind.DELIVERED  # every item was answered
    assert outcome.response is not None
    assert [(r["submission_id"], r["error"]) for r in outcome.response["refused"]] == [
        (sid, "terminal_mismatch") for sid in ids
    ]
    assert stored_count(platform_server) == 0


# -- the commands staff run -----------------------------------------------------------------------


def test_the_export_and_import_commands_print_a_sentence_in_the_terminal_language(
    platform_server: RunningPlatform,  # noqa: F811
    village: Terminal,
    hall: Terminal,
    tmp_path: Path,
) -> None:
    queue_submissions(village, 2)
    village.outbox.close()  # the commands run with the terminal stopped
    hall.outbox.close()
    path = tmp_path / "v.bundle"
    set_language("zh_CN")
    try:
        done, sentence = export_to(village.config, path)
        assert done and "2" in sentence and "写入" in sentence
        done, sentence = import_from(hall.config, path)
        assert done and VILLAGE in sentence and "上传" in sentence
        done, sentence = import_from(hall.config, path)
        assert done and "已导入过" in sentence
        with Outbox(hall.config.outbox_path, _key(hall)) as outbox:
            assert outbox.counts()[State.QUEUED.value] == 1
        path.write_bytes(path.read_bytes().replace(b'"V01"', b'"V02"'))
        done, sentence = import_from(hall.config, path)
        assert not done and "不能信任" in sentence
    finally:
        set_language("en")


def _key(terminal: Terminal) -> bytes:
    return load_outbox_key(terminal.config.outbox_path, terminal.config.key_path, "file").key


def test_unsealed_rows_are_never_written_to_a_bundle(village: Terminal, tmp_path: Path) -> None:
    body = {"submission_id": "plain-1", "applicant": {"name": DEMO_APPLICANT["name"]}}
    village.outbox.enqueue("submission", json.dumps(body).encode(), b"{}", item_id="plain-1")
    with pytest.raises(BundleError) as nothing:
        export(village, tmp_path / "v.bundle")
    assert nothing.value.code == bundles.NOTHING_TO_EXPORT
    assert not (tmp_path / "v.bundle").exists()
    ids = queue_submissions(village, 1)
    result = export(village, tmp_path / "v.bundle")
    assert (result.written, result.skipped) == (1, 1)
    doc = json.loads((tmp_path / "v.bundle").read_bytes())
    assert [item["submission_id"] for item in doc["items"]] == ids
    assert base64.b64decode(doc["signer_public_key"]) == bytes(
        village.identity.key.public_key().public_bytes_raw()
    )
