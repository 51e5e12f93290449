"""Trust on every hop, over real HTTP(S) on 127.0.0.1: enrolment with a pinned CA, signed and
sealed submissions, refused forgeries and replays, a revoked terminal, a signed catalogue."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.catalogue import CatalogueError
from kiosk.catalogue_store import CatalogueStore
from kiosk.config import Config
from kiosk.i18n import set_language
from kiosk.platform_client import TLS_ERROR, OutcomeKind, PlatformClient
from kiosk.sync import SUBMISSION_KIND, SyncEngine
from kiosk.sync_messages import describe_error
from kiosk.terminal_auth import (
    CA_FILE,
    ENROLMENT_FILE,
    KEY_FILE,
    EnrolmentError,
    PlainHttpRefused,
    TerminalAuth,
    enrol,
    load_identity,
)
from kiosk.trust import seal, signing_keys
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State, new_item_id
from refplatform.app import DEFAULT_CATALOGUE
from refplatform.keys import PlatformKeys, default_keys_dir
from refplatform.server import RunningPlatform, TlsFiles, start_in_thread
from tests.fixtures.platform import demo_submission, enrol_terminal, issue_code
from tests.fixtures.tls import make_tls

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10


def _tls(folder: Path, name: str) -> TlsFiles:
    made = make_tls(folder, name)
    return TlsFiles(cert=made.cert, key=made.key, ca=made.ca)


@pytest.fixture
def https_platform(tmp_path: Path) -> Iterator[RunningPlatform]:
    tls = _tls(tmp_path / "tls", "platform")
    with start_in_thread(tmp_path / "https.sqlite3", DEFAULT_CATALOGUE, tls=tls) as running:
        yield running


@pytest.fixture(params=["https", "http"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningPlatform]:
    """The platform over https with the tests' own CA, and over loopback http (the demo's)."""
    tls = _tls(tmp_path / "tls", "platform") if request.param == "https" else None
    with start_in_thread(tmp_path / "platform.sqlite3", DEFAULT_CATALOGUE, tls=tls) as running:
        yield running


def _verify(platform: RunningPlatform) -> str | bool:
    """What a test's own requests trust: the platform's CA given each time (requests would take
    REQUESTS_CA_BUNDLE over a session's setting)."""
    return str(platform.ca_path) if platform.ca_path is not None else True


def _client(platform: RunningPlatform, auth: TerminalAuth) -> PlatformClient:
    ca = str(platform.ca_path) if platform.ca_path is not None else None
    return PlatformClient(platform.base_url, auth=auth, ca_path=ca)


def _submit(client: PlatformClient, terminal_id: str = "K01") -> tuple[str, OutcomeKind]:
    body = demo_submission(submission_id=new_item_id())
    body["terminal_id"] = terminal_id
    outcome = client.submit(body["submission_id"], body)
    assert outcome.delivered, outcome
    return body["submission_id"], outcome.kind


def test_a_terminal_enrols_over_https_pins_the_ca_and_submits(
    https_platform: RunningPlatform, tmp_path: Path
) -> None:
    assert https_platform.base_url.startswith("https://127.0.0.1:")
    code = issue_code(https_platform, "K07")
    assert "/" in code  # the CA's fingerprint rides with the code
    data = tmp_path / "terminal"
    record = enrol(data, https_platform.base_url, code)
    assert record.terminal_id == "K07" and record.pinned_ca
    for name in (KEY_FILE, ENROLMENT_FILE, CA_FILE):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    assert (data / CA_FILE).read_bytes() == https_platform.ca_path.read_bytes()  # type: ignore[union-attr]
    identity = load_identity(data, https_platform.base_url)
    client = PlatformClient(
        https_platform.base_url, auth=identity.auth(), ca_path=str(identity.ca_path)
    )
    try:
        submission_id, kind = _submit(client, "K07")
        assert kind is OutcomeKind.DELIVERED
        assert client.status(submission_id)["submission_id"] == submission_id
    finally:
        client.close()
    # The code worked once.
    with pytest.raises(EnrolmentError) as again:
        enrol(tmp_path / "second", https_platform.base_url, code)
    assert again.value.code == "enrolment_code_used"


def test_enrolment_refuses_a_platform_whose_ca_is_not_the_one_in_the_code(
    https_platform: RunningPlatform, tmp_path: Path
) -> None:
    impostor_tls = _tls(tmp_path / "impostor", "impostor")
    with start_in_thread(tmp_path / "impostor.sqlite3", DEFAULT_CATALOGUE, tls=impostor_tls) as bad:
        genuine = issue_code(https_platform, "K01")
        forged = genuine.split("/")[0] + "/" + genuine.split("/")[1]
        with pytest.raises(EnrolmentError) as refused:
            enrol(tmp_path / "terminal", bad.base_url, forged)
    assert refused.value.code == "ca_mismatch"
    assert not (tmp_path / "terminal" / KEY_FILE).exists()


def test_a_pinned_terminal_refuses_a_platform_with_another_certificate(
    https_platform: RunningPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = enrol_terminal(https_platform, tmp_path / "terminal")
    impostor_tls = _tls(tmp_path / "impostor", "impostor")
    # Not even a CA bundle named in the environment (which requests would otherwise prefer to a
    # session's own setting) gets past the pin.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(impostor_tls.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(impostor_tls.ca))
    with start_in_thread(tmp_path / "impostor.sqlite3", DEFAULT_CATALOGUE, tls=impostor_tls) as bad:
        client = PlatformClient(bad.base_url, auth=identity.auth(), ca_path=str(identity.ca_path))
        try:
            body = demo_submission(submission_id=new_item_id())
            outcome = client.submit(body["submission_id"], body)
            assert outcome.kind is OutcomeKind.RETRY and outcome.error_code == TLS_ERROR
            assert not client.health()
        finally:
            client.close()
        # and it never reached the impostor
        assert (
            requests.get(
                f"{bad.base_url}/api/v1/submissions/{body['submission_id']}",
                verify=str(impostor_tls.ca),
                timeout=TIMEOUT,
            ).status_code
            == 404
        )


def _post(
    session: requests.Session, platform: RunningPlatform, body: dict[str, object]
) -> requests.Response:
    return session.post(
        f"{platform.base_url}/api/v1/submissions",
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(body["submission_id"])},
        timeout=TIMEOUT,
        verify=_verify(platform),
    )


def _stored(platform: RunningPlatform, submission_id: str) -> bool:
    answer = requests.get(
        f"{platform.base_url}/api/v1/submissions/{submission_id}",
        timeout=TIMEOUT,
        verify=_verify(platform),
    )
    return answer.status_code == 200


def test_forged_requests_file_nothing(platform: RunningPlatform, tmp_path: Path) -> None:
    k01 = enrol_terminal(platform, tmp_path / "k01", "K01")
    k02 = enrol_terminal(platform, tmp_path / "k02", "K02")
    body = demo_submission(submission_id=new_item_id())  # in K01's name
    with requests.Session() as anyone:
        answer = _post(anyone, platform, body)
        assert (answer.status_code, answer.json()["error"]) == (401, "credentials_missing")
        rating = anyone.post(
            f"{platform.base_url}/api/v1/submissions/{body['submission_id']}/rating",
            json={"level": "satisfied", "comment": ""},
            timeout=TIMEOUT,
            verify=_verify(platform),
        )
        assert rating.status_code == 401
    with requests.Session() as other:
        other.auth = k02.auth()  # K02's genuine credential, filing in K01's name
        answer = _post(other, platform, body)
        assert (answer.status_code, answer.json()["error"]) == (403, "terminal_mismatch")
    with requests.Session() as forger:
        forger.auth = TerminalAuth(Ed25519PrivateKey.generate(), "K01")  # claims to be K01
        answer = _post(forger, platform, body)
        assert (answer.status_code, answer.json()["error"]) == (401, "signature_invalid")
    assert not _stored(platform, str(body["submission_id"]))
    # The genuine terminal's copy is not pre-claimed by any of them.
    with requests.Session() as genuine:
        genuine.auth = k01.auth()
        assert _post(genuine, platform, body).status_code == 201


def test_a_replayed_request_is_refused(platform: RunningPlatform, tmp_path: Path) -> None:
    identity = enrol_terminal(platform, tmp_path / "terminal")
    body = demo_submission(submission_id=new_item_id())
    with requests.Session() as session:
        session.auth = identity.auth()
        prepared = session.prepare_request(
            requests.Request(
                "POST",
                f"{platform.base_url}/api/v1/submissions",
                data=json.dumps(body).encode("utf-8"),
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": body["submission_id"],
                },
            )
        )
        verify = _verify(platform)
        assert session.send(prepared, timeout=TIMEOUT, verify=verify).status_code == 201
        copied = session.send(
            prepared, timeout=TIMEOUT, verify=verify
        )  # the same bytes, headers and nonce
    assert (copied.status_code, copied.json()["error"]) == (401, "request_replayed")


def test_a_drifted_clock_is_set_right_by_the_platforms_date(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    identity = enrol_terminal(platform, tmp_path / "terminal")
    auth = identity.auth(clock=lambda: time.time() - 3 * 3600)  # a village terminal, hours behind
    client = _client(platform, auth)
    try:
        _, kind = _submit(client)
        assert kind is OutcomeKind.DELIVERED
        assert abs(auth.clock_offset_s - 3 * 3600) < 60
    finally:
        client.close()


def test_a_revoked_terminal_keeps_its_queue_and_staff_are_told(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    set_language("en")
    data = tmp_path / "terminal"
    identity = enrol_terminal(platform, data)
    keys = PlatformKeys(default_keys_dir(platform.db_path))
    revoked = requests.post(
        f"{platform.base_url}/api/v1/terminals/K01/revoke",
        headers=platform.back_office_headers,
        timeout=TIMEOUT,
        verify=_verify(platform),
    )
    assert revoked.status_code == 200
    outbox = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    client = _client(platform, identity.auth())
    try:
        sid = new_item_id()
        body = demo_submission(submission_id=sid)
        sealed = {
            "submission_id": sid,
            "sealed": seal(json.dumps(body).encode(), keys.sealing_public_key, sid.encode()),
        }
        outbox.enqueue(SUBMISSION_KIND, json.dumps(sealed).encode(), b"{}", item_id=sid)
        engine = SyncEngine(outbox, client)
        engine.drain_once()
        assert outbox.state_of(sid) is State.QUEUED
        status = engine.status()
        assert status.last_error == "terminal_revoked"
        assert "withdrawn" in describe_error(status.last_error)
        assert not _stored(platform, sid)
        # Enrolled again, the same queue goes up: nothing was lost.
        again = enrol_terminal(platform, data)
        client.close()
        client = _client(platform, again.auth())
        outbox.bring_forward()
        assert SyncEngine(outbox, client).drain_once() == 1
        assert outbox.state_of(sid) is State.DELIVERED and _stored(platform, sid)
    finally:
        client.close()
        outbox.close()
        set_language("zh_CN")


def test_a_sealed_row_cannot_be_read_with_the_terminals_own_key(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    from kiosk.app import build_parts

    config = Config(data_dir=tmp_path / "data", platform_url=platform.base_url)
    enrol_terminal(platform, config.data_dir)
    parts = build_parts(config, demo=True, bundled_catalogue=DEFAULT_CATALOGUE)
    try:
        from tests.fixtures.platform import DEMO_APPLICANT

        sid = new_item_id()
        body = demo_submission(submission_id=sid)
        payload, files = parts.submitter._payload(sid, body, ())
        parts.outbox.enqueue(SUBMISSION_KIND, payload, b"{}", item_id=sid, attachments=files)
        item = parts.outbox.claim_next()  # read back with the terminal's own key
        assert item is not None and item.id == sid
        claimed = item.payload
        parts.outbox.mark_retry(sid, "read back", 0)
        stored = json.loads(claimed)
        assert set(stored) == {"submission_id", "sealed"}
        for secret in (DEMO_APPLICANT["id_number"], DEMO_APPLICANT["name"], "13800138000"):
            assert secret.encode() not in claimed and secret not in claimed.decode("utf-8")
        assert parts.sync.drain_once() == 1
        state = requests.get(
            f"{platform.base_url}/api/v1/submissions/{sid}",
            timeout=TIMEOUT,
            verify=_verify(platform),
        )
        assert state.json()["receipt_number"] == body["receipt_number"]
    finally:
        parts.close()


class _Tamperer(BaseHTTPRequestHandler):
    catalogue = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.catalogue)))
        self.end_headers()
        self.wfile.write(self.catalogue)

    def log_message(self, *_: object) -> None:
        return


def test_a_tampered_catalogue_is_refused_and_the_last_good_one_kept(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    identity = enrol_terminal(platform, tmp_path / "terminal")
    keys = signing_keys(identity.enrolment.catalogue_keys().values())
    store = CatalogueStore(tmp_path / "catalogue.json", None, signing_keys=keys)
    client = _client(platform, identity.auth())
    genuine = store.refresh(client)
    client.close()
    document = requests.get(
        f"{platform.base_url}/api/v1/catalogue", timeout=TIMEOUT, verify=_verify(platform)
    ).json()
    document["services"][0]["name"] = {"zh_CN": "假冒的服务", "en": "A forged service"}

    class Handler(_Tamperer):
        catalogue = json.dumps(document, ensure_ascii=False).encode("utf-8")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        forged_source = PlatformClient(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(CatalogueError):
            store.refresh(forged_source)
        forged_source.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
    kept = store.load_local()
    assert kept.version == genuine.version
    assert [s.id for s in kept.services] == [s.id for s in genuine.services]


def test_plain_http_to_another_computer_is_refused_at_start_up(tmp_path: Path) -> None:
    from kiosk.app import build_parts

    config = Config(data_dir=tmp_path / "data", platform_url="http://192.0.2.10:8700")
    with pytest.raises(PlainHttpRefused):
        build_parts(config, demo=False, bundled_catalogue=DEFAULT_CATALOGUE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "--platform-url",
            "http://192.0.2.10:8700",
            "--data-dir",
            str(tmp_path / "data"),
            "--enrol",
            "ABCD-EFGH-JKMN-PQRS",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "https://" in done.stderr and "http://" in done.stderr
    assert "服务平台地址必须以 https:// 开头" in done.stderr


def test_only_the_platforms_one_ca_is_pinned(
    https_platform: RunningPlatform, tmp_path: Path
) -> None:
    assert https_platform.ca_path is not None
    genuine = https_platform.ca_path.read_bytes()
    attacker = make_tls(tmp_path / "attacker", "attacker")
    served_with_extra = genuine + attacker.ca.read_bytes()  # the fingerprint is still the first's
    code = issue_code(https_platform, "K01")
    for served, why in (
        (served_with_extra, "ca_unreadable"),
        (attacker.cert.read_bytes(), "ca_unreadable"),  # not a CA at all
        (attacker.ca.read_bytes(), "ca_mismatch"),
    ):
        with pytest.raises(EnrolmentError) as refused:
            enrol(
                tmp_path / "terminal",
                https_platform.base_url,
                code,
                fetch_ca=lambda _u, s=served: s,
            )
        assert refused.value.code == why
        assert not (tmp_path / "terminal" / KEY_FILE).exists()
    record = enrol(tmp_path / "terminal", https_platform.base_url, code)
    assert record.pinned_ca
    pinned = (tmp_path / "terminal" / CA_FILE).read_bytes()
    assert pinned.count(b"BEGIN CERTIFICATE") == 1


def test_a_key_its_enrolment_does_not_name_is_not_used(
    platform_server: RunningPlatform, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    from kiosk.terminal_auth import NotEnrolled

    data = tmp_path / "terminal"
    enrol_terminal(platform_server, data)
    # As an enrolment cut off half way would leave it: another key beside the record.
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (data / KEY_FILE).write_bytes(other)
    with pytest.raises(NotEnrolled):
        load_identity(data, platform_server.base_url)


def test_only_the_terminal_that_filed_a_case_rates_it(
    platform_server: RunningPlatform, tmp_path: Path
) -> None:
    k01 = enrol_terminal(platform_server, tmp_path / "k01", "K01")
    k02 = enrol_terminal(platform_server, tmp_path / "k02", "K02")
    filing = PlatformClient(platform_server.base_url, auth=k01.auth())
    other = PlatformClient(platform_server.base_url, auth=k02.auth())
    try:
        submission_id, _ = _submit(filing)
        from kiosk.platform_client import PlatformRefused

        with pytest.raises(PlatformRefused):
            other.rate(submission_id, "very_dissatisfied")
        assert filing.rate(submission_id, "satisfied")["level"] == "satisfied"
    finally:
        filing.close()
        other.close()


def test_a_row_queued_under_the_old_terminal_id_stays_queued(
    platform_server: RunningPlatform, tmp_path: Path
) -> None:
    enrol_terminal(platform_server, tmp_path / "terminal", "K01")
    moved = enrol_terminal(platform_server, tmp_path / "terminal", "K09")  # enrolled again as K09
    outbox = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    client = PlatformClient(platform_server.base_url, auth=moved.auth())
    try:
        sid = new_item_id()
        body = demo_submission(submission_id=sid)  # queued as K01, before
        outbox.enqueue(SUBMISSION_KIND, json.dumps(body).encode(), b"{}", item_id=sid)
        engine = SyncEngine(outbox, client)
        engine.drain_once()
        assert outbox.state_of(sid) is State.QUEUED
        assert engine.status().last_error == "terminal_mismatch"
    finally:
        client.close()
        outbox.close()


def test_enrolment_takes_no_malformed_or_deeply_nested_body(
    platform_server: RunningPlatform,
) -> None:
    url = f"{platform_server.base_url}/api/v1/terminals/enrol"
    for body in (b"[" * 4000, b'{"code": NaN}', b"\xff", b'{"code": "x"}'):
        answer = requests.post(url, data=body, timeout=TIMEOUT)
        assert answer.status_code == 400, body[:20]
        assert answer.json()["error"] == "bad_request"
    unknown = requests.post(
        url,
        json={"code": "0000-0000-0000-0000", "public_key": "A" * 43 + "="},
        timeout=TIMEOUT,
    )
    assert (unknown.status_code, unknown.json()["error"]) == (403, "enrolment_code_unknown")
