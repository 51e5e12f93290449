"""The receipt's signed token: made with a terminal's key, checked with the published keys, and
refused after any change, for an unknown or revoked terminal, or when it is not a token."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.catalogue import CatalogueError, parse_catalogue
from kiosk.catalogue_store import TerminalKeysStore
from kiosk.i18n import set_language
from kiosk.receipt_token import (
    KEYS_KIND,
    ReceiptClaim,
    ReceiptTokenError,
    TerminalKeys,
    TerminalKeysError,
    make_token,
    parse_terminal_keys,
    token_from_link,
    tracking_link,
    unverified_claim,
    verify_token,
)
from kiosk.trust import public_key_b64, signing_keys
from refplatform.app import DEFAULT_CATALOGUE
from refplatform.keys import PlatformKeys

BEIJING = dt.timezone(dt.timedelta(hours=8))
CLAIM = ReceiptClaim(
    receipt_number="K01-20261129-0007",
    submission_id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    service_id="residence-permit",
    issued_at=dt.datetime(2026, 11, 29, 14, 2, 5, tzinfo=BEIJING),
    terminal_id="K01",
)
KEY = Ed25519PrivateKey.generate()
KEYS = {"K01": KEY.public_key()}


def _code(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ReceiptTokenError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code


def test_a_token_says_what_was_signed() -> None:
    token = make_token(CLAIM, KEY)
    claim = verify_token(token, KEYS)
    assert claim == CLAIM
    assert claim.time == "2026-11-29T14:02:05+08:00"
    assert claim.issued_at.utcoffset() == dt.timedelta(hours=8)


@pytest.mark.parametrize(
    "zone", [dt.UTC, dt.timezone(dt.timedelta(hours=-9, minutes=-30)), dt.timezone.max]
)
def test_the_time_keeps_its_offset(zone: dt.timezone) -> None:
    if zone is dt.timezone.max:  # 23:59, not a whole quarter hour: no encoding
        with pytest.raises(ValueError, match="time"):
            make_token(CLAIM.__class__(**{**_fields(CLAIM), "issued_at": _at(zone)}), KEY)
        return
    claim = ReceiptClaim(**{**_fields(CLAIM), "issued_at": _at(zone)})
    assert verify_token(make_token(claim, KEY), KEYS).time == claim.time


def _at(zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime(2026, 11, 29, 6, 2, 5, tzinfo=dt.UTC).astimezone(zone)


def _fields(claim: ReceiptClaim) -> dict[str, object]:
    return {name: getattr(claim, name) for name in ReceiptClaim.__slots__}


def test_every_single_byte_changed_is_refused() -> None:
    token = make_token(CLAIM, KEY)
    raw = base64.b32decode(token + "=" * (-len(token) % 8))
    for index in range(len(raw)):
        for flip in (0x01, 0x80):
            changed = bytearray(raw)
            changed[index] ^= flip
            forged = base64.b32encode(bytes(changed)).decode().rstrip("=")
            code = _code(verify_token, forged, KEYS)
            assert code in {
                ReceiptTokenError.NOT_AUTHENTIC,
                ReceiptTokenError.MALFORMED,
                ReceiptTokenError.UNKNOWN_TERMINAL,
            }, index


def test_every_single_character_changed_is_refused() -> None:
    token = make_token(CLAIM, KEY)
    for index, char in enumerate(token):
        other = "A" if char != "A" else "B"
        with pytest.raises(ReceiptTokenError):
            verify_token(token[:index] + other + token[index + 1 :], KEYS)
    # another spelling of the same bytes (lower case) is not the token either
    assert _code(verify_token, token.lower(), KEYS) == ReceiptTokenError.MALFORMED


def test_a_claim_signed_by_another_key_is_not_authentic() -> None:
    other = make_token(CLAIM, Ed25519PrivateKey.generate())
    assert _code(verify_token, other, KEYS) == ReceiptTokenError.NOT_AUTHENTIC


def test_an_unknown_or_revoked_terminal_is_refused() -> None:
    token = make_token(CLAIM, KEY)
    assert _code(verify_token, token, {}) == ReceiptTokenError.UNKNOWN_TERMINAL
    assert _code(verify_token, token, {"K02": KEY.public_key()}) == (
        ReceiptTokenError.UNKNOWN_TERMINAL
    )
    assert _code(verify_token, token, KEYS, revoked={"K01"}) == ReceiptTokenError.REVOKED_TERMINAL
    assert TerminalKeys(KEYS).verify(token) == CLAIM
    assert _code(TerminalKeys(KEYS, frozenset({"K01"})).verify, token) == (
        ReceiptTokenError.REVOKED_TERMINAL
    )


@pytest.mark.parametrize(
    "token",
    ["", "A", "AAAA", "not-a-token", "A" * 2000, "AEA2EJ46WUDXMYNQ=", "AEA2EJ46WUDXMYNQ\n"],
)
def test_what_is_not_a_token_is_malformed(token: str) -> None:
    assert _code(verify_token, token, KEYS) == ReceiptTokenError.MALFORMED


def test_cut_short_or_lengthened_tokens_are_refused() -> None:
    token = make_token(CLAIM, KEY)
    for cut in (8, 16, 40, 104, 120):
        with pytest.raises(ReceiptTokenError):
            verify_token(token[:-cut], KEYS)
    with pytest.raises(ReceiptTokenError):
        verify_token(token + "AAAAAAAA", KEYS)


def test_the_refusal_is_told_in_the_citizens_language() -> None:
    token = make_token(CLAIM, KEY)
    set_language("zh_CN")
    with pytest.raises(ReceiptTokenError) as caught:
        verify_token(token, {})
    assert "终端" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"issued_at": dt.datetime(2026, 11, 29, 14, 2, 5)}, "offset"),
        ({"submission_id": "not-a-uuid"}, "UUID"),
        ({"submission_id": CLAIM.submission_id.upper()}, "canonical"),
        ({"receipt_number": ""}, "receipt number"),
        ({"service_id": "x" * 256}, "service id"),
    ],
)
def test_a_claim_that_cannot_be_encoded_is_refused_when_made(
    change: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        make_token(ReceiptClaim(**{**_fields(CLAIM), **change}), KEY)


def test_links_carry_the_token_and_give_it_back() -> None:
    token = make_token(CLAIM, KEY)
    link = tracking_link("https://zwfw.example.gov.cn/track", token)
    assert link == f"https://zwfw.example.gov.cn/track?t={token}"
    assert token_from_link(link) == token
    assert token_from_link(f"https://zwfw.example.gov.cn/track/{token}") == token
    assert token_from_link(f"  {token}\n") == token
    assert unverified_claim(token) == CLAIM


def _published(keys: PlatformKeys, active: dict[str, str], revoked: dict[str, str]) -> dict:
    return keys.sign_catalogue({"kind": KEYS_KIND, "terminals": active, "revoked": revoked})


def test_the_published_keys_are_taken_only_signed_by_the_platform(tmp_path: Path) -> None:
    platform = PlatformKeys(tmp_path / "keys")
    trusted = signing_keys([platform.signing_public_key])
    other = Ed25519PrivateKey.generate()
    document = _published(
        platform,
        {"K01": public_key_b64(KEY.public_key())},
        {"K02": public_key_b64(other.public_key())},
    )
    keys = parse_terminal_keys(document, trusted)
    assert set(keys.active) == {"K01"} and keys.revoked == {"K02"}
    assert keys.verify(make_token(CLAIM, KEY)) == CLAIM
    revoked_claim = ReceiptClaim(**{**_fields(CLAIM), "terminal_id": "K02"})
    assert _code(keys.verify, make_token(revoked_claim, other)) == (
        ReceiptTokenError.REVOKED_TERMINAL
    )
    # a key slipped into the list after signing
    slipped = json.loads(json.dumps(document))
    slipped["terminals"]["K09"] = public_key_b64(other.public_key())
    with pytest.raises(TerminalKeysError):
        parse_terminal_keys(slipped, trusted)
    # signed by another platform
    elsewhere = _published(PlatformKeys(tmp_path / "elsewhere"), {}, {})
    with pytest.raises(TerminalKeysError):
        parse_terminal_keys(elsewhere, trusted)
    # a catalogue is not a list of keys, though signed by the same key
    catalogue = platform.sign_catalogue({"version": "1", "services": []})
    with pytest.raises(TerminalKeysError):
        parse_terminal_keys(catalogue, trusted)


class _Source:
    def __init__(self, document: dict) -> None:
        self.document = document

    def get_terminal_keys(self) -> dict:
        return self.document


def test_the_kept_keys_are_verified_each_time_they_are_read(tmp_path: Path) -> None:
    platform = PlatformKeys(tmp_path / "keys")
    trusted = signing_keys([platform.signing_public_key])
    document = _published(platform, {"K01": public_key_b64(KEY.public_key())}, {})
    store = TerminalKeysStore(tmp_path / "data" / "terminal_keys.json", trusted)
    assert store.load() == TerminalKeys()
    store.refresh(_Source(document))
    assert (tmp_path / "data" / "terminal_keys.json").stat().st_mode & 0o777 == 0o600
    again = TerminalKeysStore(tmp_path / "data" / "terminal_keys.json", trusted)
    assert again.load().verify(make_token(CLAIM, KEY)) == CLAIM  # offline, from the kept copy
    # a list refused on the way leaves the kept one in place
    with pytest.raises(TerminalKeysError):
        again.refresh(_Source({**document, "terminals": {}}))
    assert set(again.current().active) == {"K01"}
    # a kept copy changed on disk is not used
    kept = tmp_path / "data" / "terminal_keys.json"
    kept.write_text(kept.read_text().replace('"K01"', '"K07"'))
    assert TerminalKeysStore(kept, trusted).load() == TerminalKeys()


def _catalogue(tracking: object) -> dict:
    doc: dict = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    doc["tracking"] = tracking
    return doc


def test_the_catalogue_announces_the_public_tracking_page() -> None:
    url = "https://zwfw.example.gov.cn/track"
    assert parse_catalogue(_catalogue({"public_url": url})).tracking_url == url
    without = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    assert parse_catalogue(without).tracking_url is None


@pytest.mark.parametrize(
    "tracking",
    [
        "https://zwfw.example.gov.cn/track",
        {"public_url": 3},
        {"public_url": "ftp://zwfw.example.gov.cn/track"},
        {"public_url": "https://zwfw.example.gov.cn/track?x=1"},
        {"public_url": "https://zwfw.example.gov.cn/track#here"},
        {"public_url": "https:///track"},
        {"public_url": "https://zwfw.example.gov.cn/查询"},
        {"public_url": "https://zwfw.example.gov.cn/ track"},
        {"public_url": "https://example.gov.cn/" + "x" * 200},
    ],
)
def test_a_broken_tracking_member_is_refused_like_the_catalogue(tracking: object) -> None:
    with pytest.raises(CatalogueError):
        parse_catalogue(_catalogue(tracking))


@pytest.mark.parametrize(
    "number",
    ["K01-20261129-0007", "K01-20261128-0007", "K02-20261129-0007", "K01-20261129-00007", "人工-1"],
)
def test_any_receipt_number_comes_back_as_it_was(number: str) -> None:
    claim = ReceiptClaim(**{**_fields(CLAIM), "receipt_number": number})
    assert verify_token(make_token(claim, KEY), KEYS).receipt_number == number


def test_the_usual_receipt_number_is_carried_short() -> None:
    usual = make_token(CLAIM, KEY)
    other = make_token(ReceiptClaim(**{**_fields(CLAIM), "receipt_number": "K01-X-0007"}), KEY)
    assert len(usual) < len(other) - 10
