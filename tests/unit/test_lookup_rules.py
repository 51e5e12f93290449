"""What a scanned or typed line means, the words of a status's age, the lookup cache, and the
rules of a satisfaction rating."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.i18n import set_language
from kiosk.lookup import (
    WAITING_UPLOAD,
    Case,
    LookupCache,
    NotAReceiptError,
    Query,
    age_words,
    cache_key,
    card_query,
    last_updated,
    may_rate,
    parse_scan,
)
from kiosk.ratings import RATING_KIND, RatingChoice, RatingDesk, rating_body
from kiosk.receipt_token import ReceiptClaim, TerminalKeys, make_token, tracking_link
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox

SUBMISSION = "0192f0c4-7a1b-7c3d-8e9f-0123456789ab"


@pytest.mark.parametrize(
    "line",
    ["K01-20261123-0007", " k01-20261123-0007 ", "Ｋ０１－20261123－0007".replace("－", "-")],
)
def test_a_receipt_number_as_printed_typed_or_scanned(line: str) -> None:
    assert parse_scan(line) == Query(receipt_number="K01-20261123-0007")


def test_the_receipts_signed_link_names_its_receipt() -> None:
    claim = ReceiptClaim(
        "K01-20261123-0007",
        SUBMISSION,
        "residence-permit",
        dt.datetime(2026, 11, 23, 14, 32, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        "K01",
    )
    token = make_token(claim, Ed25519PrivateKey.generate())
    link = tracking_link("https://zwfw.example.gov.cn/track", token)
    assert parse_scan(link) == Query(receipt_number="K01-20261123-0007")


def test_an_unsigned_tracking_link_names_its_submission() -> None:
    assert parse_scan(f"http://127.0.0.1:8700/track/{SUBMISSION}") == Query(
        submission_id=SUBMISSION
    )


@pytest.mark.parametrize(
    "line",
    [
        "",
        "K01-2026112-0007",
        "hello",
        "https://example.com/",
        "https://example.com/track/not-an-id",
        "https://example.com/track?t=NOTATOKEN",
        "ftp://example.com/track/" + SUBMISSION,
        "9787111213826",  # a book's barcode
    ],
)
def test_anything_else_is_not_a_receipt(line: str) -> None:
    with pytest.raises(NotAReceiptError):
        parse_scan(line)


def test_a_card_asks_by_its_valid_id_number_only() -> None:
    assert card_query("11010519491231002x").id_number == "11010519491231002X"
    assert "11010519491231002X" not in repr(card_query("11010519491231002X"))
    with pytest.raises(NotAReceiptError):
        card_query("110105194912310021")


def test_the_age_of_a_status_in_words() -> None:
    set_language("zh_CN")
    try:
        assert last_updated(3 * 86400 + 5) == "最后更新：3 天前"
        assert age_words(30) == "刚刚"
        assert age_words(7200) == "2 小时前"
    finally:
        set_language("en")
    assert age_words(300) == "5 minutes ago"


def test_the_cache_keeps_four_things_sealed_and_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    now = [2_000_000_000.0]
    cache = LookupCache(path, cache_key(b"x" * 32), clock=lambda: now[0])
    cache.remember([Case("K01-20261123-0007", "residence-permit", WAITING_UPLOAD, now[0])])
    cache.remember([Case("K01-20261123-0007", "residence-permit", "in_review", now[0] + 60)])
    cache.remember([Case("K01-20261123-0007", "residence-permit", "received", now[0] + 30)])
    found = cache.get("K01-20261123-0007")
    assert found == Case("K01-20261123-0007", "residence-permit", "in_review", now[0] + 60)
    assert cache.get("K01-20261123-0008") is None
    with sqlite3.connect(path) as db:
        [(tag, sealed)] = db.execute("SELECT tag, sealed FROM cases").fetchall()
    assert b"K01" not in sealed and "K01" not in tag and b"in_review" not in sealed
    # Another key opens nothing.
    assert LookupCache(path, cache_key(b"y" * 32)).get("K01-20261123-0007") is None


def test_the_cache_forgets_the_oldest_beyond_its_size(tmp_path: Path) -> None:
    cache = LookupCache(tmp_path / "cache.sqlite3", cache_key(b"x" * 32), clock=lambda: 1e9)
    cases = [Case(f"K01-20261123-{n:04d}", "s", "received", 1e9 - 600 + n) for n in range(510)]
    cache.remember(cases)
    assert cache.count() == 500
    assert cache.get("K01-20261123-0000") is None
    assert cache.get("K01-20261123-0509") is not None


def test_only_an_unhappy_rating_carries_a_reason_and_a_call_back() -> None:
    assert rating_body(RatingChoice("satisfied")) == {"level": "satisfied", "comment": ""}
    assert rating_body(RatingChoice("very_dissatisfied", "staff_attitude", True)) == {
        "level": "very_dissatisfied",
        "comment": "",
        "reason": "staff_attitude",
        "call_back": True,
    }
    with pytest.raises(ValueError, match="only a dissatisfied"):
        RatingChoice("satisfied", "long_wait")
    with pytest.raises(ValueError, match="reason"):
        RatingChoice("dissatisfied", "too_hot")
    with pytest.raises(ValueError, match="level"):
        RatingChoice("meh")


class _Wakes:
    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


def test_a_rating_is_queued_in_the_outbox_and_the_sync_is_woken(tmp_path: Path) -> None:
    wakes = _Wakes()
    with Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "key")) as outbox:
        rating_id = RatingDesk(outbox, wakes).queue(
            SUBMISSION, RatingChoice("dissatisfied", "long_wait", False)
        )
        [item] = outbox.claim_batch(1)
    assert (item.id, item.kind, wakes.count) == (rating_id, RATING_KIND, 1)
    payload = json.loads(item.payload)
    assert payload["submission_id"] == SUBMISSION
    assert payload["body"] == {
        "level": "dissatisfied", "comment": "", "reason": "long_wait", "call_back": False
    }


def _signed_link(key: Ed25519PrivateKey, submission_id: str = SUBMISSION) -> str:
    claim = ReceiptClaim(
        "K01-20261123-0007",
        submission_id,
        "residence-permit",
        dt.datetime(2026, 11, 23, 14, 32, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        "K01",
    )
    return tracking_link("https://zwfw.example.gov.cn/track", make_token(claim, key))


def test_a_case_is_rated_only_when_found_by_card_or_by_a_receipt_code_that_verifies() -> None:
    k01 = Ed25519PrivateKey.generate()
    keys = TerminalKeys(active={"K01": k01.public_key()})
    case = Case("K01-20261123-0007", "residence-permit", "received", 0.0, SUBMISSION, (), True)
    # The holder's card, or the receipt's code signed by the terminal that printed it.
    assert may_rate(card_query("11010519491231002X"), case, keys)
    assert may_rate(parse_scan(_signed_link(k01)), case, keys)
    # A receipt number typed (easy to guess) shows the status only.
    assert not may_rate(parse_scan("K01-20261123-0007"), case, keys)
    assert not may_rate(parse_scan(f"https://zwfw.example.gov.cn/track/{SUBMISSION}"), case, keys)
    # A code that does not verify, or names another submission, or no published keys here.
    forged = _signed_link(Ed25519PrivateKey.generate())
    assert parse_scan(forged) == Query(receipt_number="K01-20261123-0007")
    assert not may_rate(parse_scan(forged), case, keys)
    other = _signed_link(k01, "0192f0c4-7a1b-7c3d-8e9f-0123456789ac")
    assert not may_rate(parse_scan(other), case, keys)
    assert not may_rate(parse_scan(_signed_link(k01)), case, None)
    revoked = TerminalKeys(revoked=frozenset({"K01"}))
    assert not may_rate(parse_scan(_signed_link(k01)), case, revoked)
    # A case filed elsewhere is never rated here.
    elsewhere = Case("K01-20261123-0007", "residence-permit", "received", 0.0, SUBMISSION)
    assert not may_rate(card_query("11010519491231002X"), elsewhere, keys)
