"""Signed requests and the platform's terminal registry, without HTTP."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.terminal_auth import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_SKEW_S,
    EnrolmentError,
    PlainHttpRefused,
    check_transport,
    normal_code_secret,
    parse_code,
    sign_headers,
)
from refplatform.terminals import AuthRefused, TerminalRegistry


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _raw(key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(public).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> TerminalRegistry:
    return TerminalRegistry(tmp_path / "platform.sqlite3", clock=clock)


def _enrolled(registry: TerminalRegistry, terminal_id: str = "K01") -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    issued = registry.issue_code(terminal_id)
    assert registry.enrol(issued.secret, _raw(key)) == terminal_id
    return key


def _signed(
    key: Ed25519PrivateKey, clock: Clock, body: bytes = b'{"a":1}', terminal_id: str = "K01"
) -> dict[str, str]:
    return sign_headers(key, terminal_id, "POST", "/api/v1/submissions", body, now=clock())


def test_a_signed_request_names_its_terminal(registry: TerminalRegistry, clock: Clock) -> None:
    key = _enrolled(registry)
    headers = _signed(key, clock)
    assert registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}') == "K01"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("body", "signature_invalid"),
        ("path", "signature_invalid"),
        ("method", "signature_invalid"),
        ("unsigned", "credentials_missing"),
        ("other_key", "signature_invalid"),
        ("unknown_terminal", "terminal_unknown"),
    ],
)
def test_a_request_that_proves_nothing_is_refused(
    registry: TerminalRegistry, clock: Clock, change: str, code: str
) -> None:
    key = _enrolled(registry)
    body, path, method = b'{"a":1}', "/api/v1/submissions", "POST"
    headers = _signed(key, clock)
    if change == "body":
        body = b'{"a":2}'
    elif change == "path":
        path = "/api/v1/submissions/batch"
    elif change == "method":
        method = "PUT"
    elif change == "unsigned":
        headers = {}
    elif change == "other_key":
        headers = _signed(Ed25519PrivateKey.generate(), clock)
    elif change == "unknown_terminal":
        headers = _signed(key, clock, terminal_id="K99")
    with pytest.raises(AuthRefused) as refused:
        registry.authenticate(method, path, headers, body)
    assert (refused.value.status, refused.value.code) == (401, code)


def test_another_terminals_credential_does_not_sign_for_this_one(
    registry: TerminalRegistry, clock: Clock
) -> None:
    _enrolled(registry, "K01")
    other = _enrolled(registry, "K02")
    headers = _signed(other, clock, terminal_id="K01")  # K02's key, claiming to be K01
    with pytest.raises(AuthRefused) as refused:
        registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
    assert refused.value.code == "signature_invalid"


def test_a_replayed_request_is_refused(registry: TerminalRegistry, clock: Clock) -> None:
    key = _enrolled(registry)
    headers = _signed(key, clock)
    registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
    clock.now += 1
    with pytest.raises(AuthRefused) as refused:
        registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
    assert refused.value.code == "request_replayed"


def test_a_replay_after_the_window_fails_on_its_time(
    registry: TerminalRegistry, clock: Clock
) -> None:
    key = _enrolled(registry)
    headers = _signed(key, clock)
    registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
    clock.now += 3 * MAX_SKEW_S  # its nonce is forgotten by now, and its time gives it away
    registry.authenticate(
        "POST", "/api/v1/submissions", _signed(key, clock), b'{"a":1}'
    )  # a fresh one purges old nonces
    with pytest.raises(AuthRefused) as refused:
        registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
    assert refused.value.code == "request_stale"


def test_a_revoked_terminal_is_told_so_and_a_new_enrolment_restores_it(
    registry: TerminalRegistry, clock: Clock
) -> None:
    key = _enrolled(registry)
    assert registry.revoke("K01")
    with pytest.raises(AuthRefused) as refused:
        registry.authenticate("POST", "/api/v1/submissions", _signed(key, clock), b'{"a":1}')
    assert (refused.value.status, refused.value.code) == (403, "terminal_revoked")
    new_key = _enrolled(registry)
    with pytest.raises(AuthRefused):
        registry.authenticate("POST", "/api/v1/submissions", _signed(key, clock), b'{"a":1}')
    headers = _signed(new_key, clock)
    assert registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}') == "K01"


def test_a_code_works_once_and_not_after_it_expires(
    registry: TerminalRegistry, clock: Clock
) -> None:
    issued = registry.issue_code("K01", ttl_s=60)
    registry.enrol(issued.secret.lower().replace("-", " "), _raw(Ed25519PrivateKey.generate()))
    with pytest.raises(AuthRefused) as used:
        registry.enrol(issued.secret, _raw(Ed25519PrivateKey.generate()))
    assert used.value.code == "enrolment_code_used"
    late = registry.issue_code("K02", ttl_s=60)
    clock.now += 61
    with pytest.raises(AuthRefused) as expired:
        registry.enrol(late.secret, _raw(Ed25519PrivateKey.generate()))
    assert expired.value.code == "enrolment_code_expired"
    with pytest.raises(AuthRefused) as unknown:
        registry.enrol("0000-0000-0000-0000", _raw(Ed25519PrivateKey.generate()))
    assert unknown.value.code == "enrolment_code_unknown"


def test_a_stale_or_future_timestamp_is_refused(registry: TerminalRegistry, clock: Clock) -> None:
    key = _enrolled(registry)
    for shift in (-MAX_SKEW_S - 5, MAX_SKEW_S + 5):
        headers = sign_headers(
            key, "K01", "GET", "/api/v1/submissions/x", b"", now=clock() + shift
        )
        with pytest.raises(AuthRefused) as refused:
            registry.authenticate("GET", "/api/v1/submissions/x", headers, b"")
        assert refused.value.code == "request_stale"


def test_tampered_headers_are_refused(registry: TerminalRegistry, clock: Clock) -> None:
    key = _enrolled(registry)
    for name, value in (
        (HEADER_TIMESTAMP, str(int(clock()) + 1)),
        (HEADER_NONCE, "ab" * 16),
        (HEADER_SIGNATURE, "not base64!"),
    ):
        headers = {**_signed(key, clock), name: value}
        with pytest.raises(AuthRefused) as refused:
            registry.authenticate("POST", "/api/v1/submissions", headers, b'{"a":1}')
        assert refused.value.code == "signature_invalid"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://platform.example.gov.cn", True),
        ("http://127.0.0.1:8700", True),
        ("http://localhost:8700", True),
        ("http://[::1]:8700", True),
        ("http://10.0.0.5:8700", False),
        ("http://platform.example.gov.cn", False),
        ("http://127.0.0.1.example.com", False),
        ("ftp://127.0.0.1", False),
    ],
)
def test_plain_http_only_to_this_computer(url: str, allowed: bool) -> None:
    if allowed:
        check_transport(url)
    else:
        with pytest.raises(PlainHttpRefused):
            check_transport(url)


def test_codes_read_as_typed() -> None:
    code = parse_code(" k7qf-m2xd 9rta-p1w3 / " + "AB" * 16)
    assert code.secret == "K7QFM2XD9RTAP1W3"  # noqa: S105 - a made-up enrolment code
    assert code.ca_fingerprint == "ab" * 16
    assert normal_code_secret("OIL0-1111-2222-3333") == "0110111122223333"
    for bad in ("K7QF-M2XD", "K7QF-M2XD-9RTA-P1W3/xyz", "K7QF-M2XD-9RTA-P1WU"):
        with pytest.raises(EnrolmentError):
            parse_code(bad)
